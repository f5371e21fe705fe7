"""Elastic Load Balancing (v2): take a target out of a target group, or put it back.

``deregister-target`` calls ``deregister_targets`` (the load balancer drains it);
``register-target`` calls ``register_targets``. With ``wait_s`` above 0 the step then waits, at
most that long and never past its timeout, with the ``target_deregistered`` (or
``target_in_service``) waiter; a target still there when the wait ends fails the step.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

from bot.errors import PermanentError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.aws.calls import AwsExecutor, call, done, failed
from integrations.steps import Params

_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/([^/]+)/[0-9a-f]+$"
)
_TARGET = re.compile(r"^[A-Za-z0-9_.:/-]{1,256}$")  # an instance id, an IP address or a Lambda ARN


class ElbExecutor(AwsExecutor):
    """Actions ``deregister-target`` and ``register-target``; target ``elb:group/target[:port]``."""

    name = "elb"

    def _describe(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> tuple[dict[str, ParamValue], str, str]:
        read = Params(f"elb {action}", params)
        arn = read.text("target_group_arn")
        matched = _ARN.match(arn)
        if matched is None:
            raise PermanentError(
                f"elb {action}: target_group_arn {arn!r} is not a target group ARN"
                " (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)"
            )
        target = read.text("target")
        if not _TARGET.match(target):
            raise PermanentError(f"elb {action}: target {target!r} is not an instance id or IP")
        values: dict[str, ParamValue] = {"target_group_arn": arn, "target": target}
        port = read.integer("port", 0, low=0) if read.has("port") else 0
        if port:
            if port > 65535:
                raise PermanentError(f"elb {action}: port {port} is not a port number")
            values["port"] = port
        wait = min(read.seconds("wait_s", 0.0), timeout_s)
        values["wait_s"] = wait
        group = matched.group(1)
        where = f"{target}:{port}" if port else target
        call_name = "deregister_targets" if action == "deregister-target" else "register_targets"
        until = "deregistered" if action == "deregister-target" else "in service"
        then = f", then wait until {until} (at most {wait:g}s)" if wait > 0 else ""
        description = f"elbv2 {call_name} target_group={group} target={where}{then}"
        return values, f"elb:{group}/{where}", description

    async def _carry_out(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        arn = read.text("target_group_arn")
        target: dict[str, Any] = {"Id": read.text("target")}
        if read.has("port"):
            target["Port"] = read.integer("port")
        elb = await self.client("elbv2")
        started = time.monotonic()
        leaving = plan.action == "deregister-target"
        operation = elb.deregister_targets if leaving else elb.register_targets
        await call(f"elbv2 {plan.action}", operation, TargetGroupArn=arn, Targets=[target])
        verb = "deregistered" if leaving else "registered"
        wait = min(read.seconds("wait_s", 0.0), plan.timeout_s - 1 - (time.monotonic() - started))
        if wait <= 0:
            return done(f"{plan.target} {verb}")
        waiter = elb.get_waiter("target_deregistered" if leaving else "target_in_service")
        delay = max(1, round(self.poll_s))
        config = {"Delay": delay, "MaxAttempts": max(1, math.floor(wait / delay))}
        problem = await call(
            f"elbv2 waiting on {plan.target}",
            _wait,
            waiter,
            TargetGroupArn=arn,
            Targets=[target],
            WaiterConfig=config,
        )
        if problem:
            state = "still registered" if leaving else "not in service"
            return failed(f"{plan.target} {verb}, but {state} after {wait:g}s ({problem})")
        took = time.monotonic() - started
        return done(
            f"{plan.target} {verb}; {'drained' if leaving else 'in service'} after {took:.0f}s"
        )


def _wait(waiter: Any, **arguments: Any) -> str:
    """Runs in a worker thread: the waiter, answering what stopped it ("" when it succeeded)."""
    from botocore.exceptions import WaiterError  # loaded already: the waiter is botocore's

    try:
        waiter.wait(**arguments)
    except WaiterError as exc:
        return str(exc)
    return ""


__all__ = ["ElbExecutor"]
