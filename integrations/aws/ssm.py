"""SSM Run Command: send a document to instances (by id or by tag), then wait for every result.

``run-command`` calls ``send_command`` with the document, its parameters (``commands`` for
``AWS-RunShellScript``, or any parameters as a JSON object) and the targets: ``instance_ids``
(a list or comma-separated) or ``tag`` (``Key=Value``, sent as ``Targets=[{"Key": "tag:Key",
"Values": ["Value"]}]``). It then polls ``get_command_invocation`` per instance (or
``list_commands`` and ``list_command_invocations`` for a tag) until each reaches a terminal
status. Anything but Success on any instance fails the step, with each status and the end of
its standard error.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import PermanentError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.aws.calls import AwsExecutor, AwsRefused, call, done, failed
from integrations.steps import Params, clip

TERMINAL = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"})
#: how long an invocation may be unknown right after send_command before that is an error
INVOCATION_GRACE_S = 15.0
_INSTANCE = re.compile(r"^(i|mi)-[0-9a-f]{8,17}$")
_TAG = re.compile(r"^([^=\s]{1,128})=(.{1,256})$")
_STREAM_LIMIT = 1000  # characters of stdout / stderr kept per instance


class SsmExecutor(AwsExecutor):
    """Action ``run-command``; target ``ssm:i-0abc,i-0def`` or ``ssm:tag:Key=Value``."""

    name = "ssm"

    def _describe(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> tuple[dict[str, ParamValue], str, str]:
        read = Params(f"ssm {action}", params)
        document = read.text("document")
        instances = read.strings("instance_ids")
        tag = read.text("tag", "")
        if bool(instances) == bool(tag):
            raise PermanentError(
                "ssm run-command: give exactly one of instance_ids or tag (Key=Value)"
            )
        bad = [i for i in instances if not _INSTANCE.match(i)]
        if bad:
            raise PermanentError(
                f"ssm run-command: instance_ids has {', '.join(bad)}, not an instance id"
                " (i-0123456789abcdef0 or mi-...)"
            )
        if tag and not _TAG.match(tag):
            raise PermanentError(f"ssm run-command: tag must be Key=Value (got {tag!r})")
        values: dict[str, ParamValue] = {"document": document}
        if instances:
            values["instance_ids"] = instances
        else:
            values["tag"] = tag
        commands = read.lines("commands")
        if commands:
            values["commands"] = commands
        parameters = read.json("parameters")
        if parameters is not None:
            if not isinstance(json.loads(parameters), dict):
                raise PermanentError("ssm run-command: parameters must be a JSON object")
            values["parameters"] = parameters
        for name in ("comment", "max_concurrency"):
            if read.has(name):
                values[name] = read.text(name)
        where = f"instances {', '.join(instances)}" if instances else f"instances tagged {tag}"
        what = f" commands={json.dumps(list(commands))}" if commands else ""
        what += f" parameters={parameters}" if parameters else ""
        description = (
            f"ssm send_command document={document} to {where}{what}, then wait for every"
            f" invocation to finish (at most {timeout_s:g}s)"
        )
        target = f"ssm:{','.join(instances)}" if instances else f"ssm:tag:{tag}"
        return values, target, description

    async def _carry_out(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        ssm = await self.client("ssm")
        deadline = time.monotonic() + max(0.0, plan.timeout_s - 1.0)
        request = send_request(read, plan.timeout_s)
        sent = await call("ssm send_command", ssm.send_command, **request)
        command_id = str(sent["Command"]["CommandId"])
        instances = read.strings("instance_ids")
        if instances:
            results = await asyncio.gather(
                *(self._wait_instance(ssm, command_id, i, deadline) for i in instances)
            )
        else:
            results = await self._wait_tagged(ssm, command_id, read.text("tag"), deadline)
        return summarise(command_id, results)

    async def _wait_instance(
        self, ssm: Any, command_id: str, instance: str, deadline: float
    ) -> Invocation:
        unknown_until = time.monotonic() + INVOCATION_GRACE_S
        status = "Pending"
        while True:
            try:
                answer = await call(
                    f"ssm get_command_invocation {instance}",
                    ssm.get_command_invocation,
                    CommandId=command_id,
                    InstanceId=instance,
                )
            except AwsRefused as refused:
                if refused.code != "InvocationDoesNotExist" or time.monotonic() > unknown_until:
                    raise
            else:
                status = str(answer.get("Status", ""))
                if status in TERMINAL:
                    return invocation(instance, answer)
            pause = min(self.poll_s, deadline - time.monotonic())
            if pause <= 0:
                return Invocation(instance, status or "Pending", unfinished=True)
            await asyncio.sleep(pause)

    async def _wait_tagged(
        self, ssm: Any, command_id: str, tag: str, deadline: float
    ) -> list[Invocation]:
        status = "Pending"
        while True:
            listed = await call("ssm list_commands", ssm.list_commands, CommandId=command_id)
            command = (listed.get("Commands") or [{}])[0]
            status = str(command.get("Status", "Pending"))
            if status in TERMINAL:
                break
            pause = min(self.poll_s, deadline - time.monotonic())
            if pause <= 0:
                return [Invocation(f"tag {tag}", status, unfinished=True)]
            await asyncio.sleep(pause)
        answer = await call(
            "ssm list_command_invocations",
            ssm.list_command_invocations,
            CommandId=command_id,
            Details=True,
        )
        found = [invocation_listed(item) for item in answer.get("CommandInvocations") or []]
        if not found:
            return [Invocation(f"tag {tag}", f"{status}, no instance carries tag {tag}", True)]
        return found


@dataclass(frozen=True, slots=True)
class Invocation:
    """One instance's outcome; ``unfinished`` when the step's time ran out first."""

    instance: str
    status: str
    unfinished: bool = False
    code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "Success" and not self.unfinished

    def line(self) -> str:
        code = f" (exit {self.code})" if self.code not in (None, -1) else ""
        state = f"still {self.status}" if self.unfinished else self.status
        text = self.stdout if self.ok else (self.stderr or self.stdout)
        tail = f": {clip(text[-_STREAM_LIMIT:], _STREAM_LIMIT)}" if text.strip() else ""
        return f"{self.instance} {state}{code}{tail}"


def invocation(instance: str, answer: Mapping[str, Any]) -> Invocation:
    return Invocation(
        instance,
        str(answer.get("Status", "")),
        code=_int(answer.get("ResponseCode")),
        stdout=str(answer.get("StandardOutputContent", "")),
        stderr=str(answer.get("StandardErrorContent", "")),
    )


def invocation_listed(item: Mapping[str, Any]) -> Invocation:
    plugins = item.get("CommandPlugins") or [{}]
    return Invocation(
        str(item.get("InstanceId", "?")),
        str(item.get("Status", "")),
        code=_int(plugins[0].get("ResponseCode")),
        stdout="\n".join(str(p.get("Output", "")) for p in plugins),
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def send_request(read: Params, timeout_s: float) -> dict[str, Any]:
    """The ``send_command`` arguments for checked parameters."""
    request: dict[str, Any] = {
        "DocumentName": read.text("document"),
        "TimeoutSeconds": max(30, int(timeout_s)),
    }
    instances = read.strings("instance_ids")
    if instances:
        request["InstanceIds"] = list(instances)
    else:
        key, value = read.text("tag").split("=", 1)
        request["Targets"] = [{"Key": f"tag:{key}", "Values": [value]}]
    parameters: dict[str, list[str]] = {}
    if read.has("parameters"):
        for name, value in json.loads(read.text("parameters")).items():
            parameters[str(name)] = (
                [str(v) for v in value] if isinstance(value, list) else [str(value)]
            )
    commands = read.lines("commands")
    if commands:
        parameters["commands"] = list(commands)
    if parameters:
        request["Parameters"] = parameters
    if read.has("comment"):
        request["Comment"] = read.text("comment")[:100]
    if read.has("max_concurrency"):
        request["MaxConcurrency"] = read.text("max_concurrency")
    return request


def summarise(command_id: str, results: list[Invocation]) -> StepResult:
    lines = "\n".join(result.line() for result in results)
    head = f"command {command_id}"
    if all(result.ok for result in results):
        return done(f"{head}: Success on {len(results)} instance(s)\n{lines}")
    bad = [r for r in results if not r.ok]
    return failed(f"{head}: {len(bad)} of {len(results)} not successful\n{lines}", head)


__all__ = ["INVOCATION_GRACE_S", "TERMINAL", "SsmExecutor"]
