"""The embedded default's fix: end a running generated scenario, so its rule stops firing.

``end-scenario`` stops ``scenario`` (on ``host``, when given) in the built-in
:class:`~integrations.local.generator.Generator`: from then on none of its log lines are written,
so re-running the incident's rule over a fresh window finds the condition cleared. Ending a
scenario that is not running (it ended on its own) succeeds and says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.errors import NotFound, PermanentError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.local.generator import Generator
from integrations.steps import Params, check_params, check_timeout, frozen


class GeneratorExecutor:
    """Action ``end-scenario``; target ``generator:<scenario>[@host]``."""

    name = "generator"

    def __init__(self, generator: Generator) -> None:
        self._generator = generator

    async def plan(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> ExecutionPlan:
        check_params(self.name, action, params)
        timeout = check_timeout(timeout_s)
        read = Params(f"generator {action}", params)
        scenario = read.text("scenario")
        host = read.text("host", "")
        try:
            self._generator.check_end(scenario, host or None)
        except NotFound as exc:
            raise PermanentError(f"generator end-scenario: {exc}") from None
        values: dict[str, ParamValue] = {"scenario": scenario}
        where = ""
        if host:
            values["host"] = host
            where = f" on {host}"
        return ExecutionPlan(
            executor=self.name,
            action=action,
            target=f"generator:{scenario}" + (f"@{host}" if host else ""),
            description=f"generator end scenario {scenario}{where}: its log lines stop",
            params=frozen(values),
            timeout_s=timeout,
        )

    async def run(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        scenario = read.text("scenario")
        host = read.text("host", "") or None
        try:
            async with asyncio.timeout(plan.timeout_s):
                ended = await asyncio.to_thread(self._generator.end, scenario, host)
        except NotFound as exc:
            return StepResult(ok=False, error=str(exc))
        except TimeoutError:
            return StepResult(
                ok=False, error=f"could not end {scenario} within {plan.timeout_s:g}s"
            )
        if ended:
            return StepResult(ok=True, output=f"ended scenario {scenario}; its log lines stopped")
        return StepResult(ok=True, output=f"scenario {scenario} was not running (nothing to end)")


__all__ = ["GeneratorExecutor"]
