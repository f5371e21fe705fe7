"""ECS: replace a service's tasks, or change how many run; then wait until it is stable.

``force-new-deployment`` calls ``update_service(forceNewDeployment=True)``; ``set-desired-count``
reads the current desired count, then ``update_service(desiredCount=...)``, and reports the
previous count as ``previous_count=N`` so a rollback can restore it. Both then poll
``describe_services`` (at most ``wait_stable_s``, default 600 s, never past the step's timeout)
until the service is stable: one deployment, the PRIMARY one, with ``rolloutState`` COMPLETED
(or none) and as many tasks running as desired. A FAILED rollout fails the step at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.aws.calls import AwsExecutor, AwsRefused, call, done, failed
from integrations.steps import Params

DEFAULT_WAIT_STABLE_S = 600.0
_MARGIN_S = 1.0  # left of the step's timeout for the last poll to answer


class EcsExecutor(AwsExecutor):
    """Actions ``force-new-deployment`` and ``set-desired-count``; target
    ``ecs:cluster/service``."""

    name = "ecs"

    def _describe(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> tuple[dict[str, ParamValue], str, str]:
        read = Params(f"ecs {action}", params)
        cluster, service = read.text("cluster"), read.text("service")
        wait = min(read.seconds("wait_stable_s", DEFAULT_WAIT_STABLE_S), timeout_s)
        values: dict[str, ParamValue] = {
            "cluster": cluster,
            "service": service,
            "wait_stable_s": wait,
        }
        if action == "force-new-deployment":
            change = "forceNewDeployment=true"
        else:
            count = read.integer("count", low=0)
            values["count"] = count
            change = f"desiredCount={count} (recording the current count for a rollback)"
        then = f", then wait until stable (at most {wait:g}s)" if wait > 0 else ", no wait"
        description = f"ecs update_service cluster={cluster} service={service} {change}{then}"
        return values, f"ecs:{cluster}/{service}", description

    async def _carry_out(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        cluster, service = read.text("cluster"), read.text("service")
        ecs = await self.client("ecs")
        where = f"ecs {cluster}/{service}"
        started = time.monotonic()
        if plan.action == "set-desired-count":
            count = read.integer("count", low=0)
            previous = int((await self._service(ecs, cluster, service)).get("desiredCount", 0))
            await call(
                f"{where} update_service",
                ecs.update_service,
                cluster=cluster,
                service=service,
                desiredCount=count,
            )
            changed = f"previous_count={previous} count={count}"
        else:
            await call(
                f"{where} update_service",
                ecs.update_service,
                cluster=cluster,
                service=service,
                forceNewDeployment=True,
            )
            changed = "forceNewDeployment=true"
        wait = min(read.seconds("wait_stable_s", DEFAULT_WAIT_STABLE_S), plan.timeout_s)
        wait = min(wait, max(0.0, plan.timeout_s - _MARGIN_S - (time.monotonic() - started)))
        if wait <= 0:
            return done(f"{changed}; not waiting for stability")
        stable, state = await self._wait_stable(ecs, cluster, service, wait)
        if stable is None:
            return failed(f"{where}: the rollout FAILED ({state})", changed)
        if not stable:
            return failed(f"{where}: not stable within {wait:g}s ({state})", changed)
        took = time.monotonic() - started
        return done(f"{changed}; stable after {took:.0f}s ({state})")

    async def _service(self, ecs: Any, cluster: str, service: str) -> dict[str, Any]:
        answer = await call(
            f"ecs {cluster}/{service} describe_services",
            ecs.describe_services,
            cluster=cluster,
            services=[service],
        )
        services = answer.get("services") or []
        if not services or services[0].get("status") == "INACTIVE":
            reasons = ", ".join(f.get("reason", "") for f in answer.get("failures") or [])
            raise AwsRefused(
                "ServiceNotFound",
                f"no active service {service} in cluster {cluster}"
                + (f" ({reasons})" if reasons else ""),
            )
        found: dict[str, Any] = services[0]
        return found

    async def _wait_stable(
        self, ecs: Any, cluster: str, service: str, wait_s: float
    ) -> tuple[bool | None, str]:
        """(True, state) once stable, (None, reason) on a FAILED rollout, (False, state) when
        ``wait_s`` ran out."""
        deadline = time.monotonic() + wait_s
        while True:
            found = await self._service(ecs, cluster, service)
            verdict, state = stability(found)
            if verdict is not False:
                return verdict, state
            pause = min(self.poll_s, deadline - time.monotonic())
            if pause <= 0:
                return False, state
            await asyncio.sleep(pause)


def stability(service: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Whether ``service`` (as ``describe_services`` answers it) is stable: True, False, or None
    when its PRIMARY deployment's rollout FAILED; and its state in words."""
    deployments = list(service.get("deployments") or [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return False, "no PRIMARY deployment yet"
    rollout = str(primary.get("rolloutState") or "")
    running = int(primary.get("runningCount", 0))
    desired = int(primary.get("desiredCount", 0))
    state = f"{running}/{desired} running, {len(deployments)} deployment(s)" + (
        f", rollout {rollout}" if rollout else ""
    )
    if rollout == "FAILED":
        reason = str(primary.get("rolloutStateReason") or "")
        return None, state + (f": {reason}" if reason else "")
    if rollout in ("", "COMPLETED") and len(deployments) == 1 and running == desired:
        return True, state
    return False, state


__all__ = ["DEFAULT_WAIT_STABLE_S", "EcsExecutor", "stability"]
