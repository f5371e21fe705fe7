"""Lambda: invoke a function synchronously; a function error fails the step.

``invoke`` calls ``lambda.invoke`` with ``InvocationType=RequestResponse``, the JSON ``payload``
(default ``{}``) and an optional ``qualifier`` (version or alias). An answer carrying
``FunctionError`` (``Handled`` or ``Unhandled``) is a failed step with the error payload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.errors import PermanentError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.aws.calls import AwsExecutor, call, done, failed
from integrations.steps import Params

_FUNCTION = re.compile(r"^[A-Za-z0-9_:\-.]{1,140}$")  # a name, partial or full ARN
_QUALIFIER = re.compile(r"^(\$LATEST|[A-Za-z0-9_-]{1,128})$")


class LambdaExecutor(AwsExecutor):
    """Action ``invoke``; target ``lambda:function[:qualifier]``."""

    name = "lambda"

    def _describe(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> tuple[dict[str, ParamValue], str, str]:
        read = Params(f"lambda {action}", params)
        function = read.text("function")
        if not _FUNCTION.match(function):
            raise PermanentError(f"lambda invoke: {function!r} is not a function name or ARN")
        payload = read.json("payload") or "{}"
        values: dict[str, ParamValue] = {"function": function, "payload": payload}
        qualifier = read.text("qualifier", "")
        if qualifier:
            if not _QUALIFIER.match(qualifier):
                raise PermanentError(f"lambda invoke: {qualifier!r} is not a version or alias")
            values["qualifier"] = qualifier
        target = f"lambda:{function}" + (f":{qualifier}" if qualifier else "")
        description = (
            f"lambda invoke function={function}"
            + (f" qualifier={qualifier}" if qualifier else "")
            + f" (RequestResponse) payload={payload}; a function error fails the step"
        )
        return values, target, description

    async def _carry_out(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        request: dict[str, Any] = {
            "FunctionName": read.text("function"),
            "InvocationType": "RequestResponse",
            "Payload": read.text("payload", "{}").encode(),
        }
        if read.has("qualifier"):
            request["Qualifier"] = read.text("qualifier")
        client = await self.client("lambda")
        status, error, body = await call(f"lambda invoke {plan.target}", _invoke, client, request)
        if error:
            return failed(f"function error ({error}) from {plan.target}: {body}", body)
        return done(f"status {status}: {body}")


def _invoke(client: Any, request: dict[str, Any]) -> tuple[int, str, str]:
    """Runs in a worker thread: the call and reading its streamed payload."""
    answer = client.invoke(**request)
    stream = answer.get("Payload")
    body = stream.read().decode("utf-8", "replace") if stream is not None else ""
    return int(answer.get("StatusCode", 0)), str(answer.get("FunctionError") or ""), body


__all__ = ["LambdaExecutor"]
