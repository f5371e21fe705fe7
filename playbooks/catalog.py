"""Which executors exist, the actions each offers and the parameters each action takes.

Pure data shared by playbook validation (``run_bot.py validate`` needs no AWS client to say that
an executor or a parameter does not exist) and by the executors in ``integrations/``, which
implement exactly these actions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: its parameters, and whether running it can be undone by another action."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    undo: str | None = None  # the action of the same executor that reverses it, if any
    summary: str = ""


def _spec(
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    undo: str | None = None,
    summary: str = "",
) -> ActionSpec:
    return ActionSpec(frozenset(required), frozenset(optional), undo, summary)


CATALOG: dict[str, dict[str, ActionSpec]] = {
    "ssm": {
        # AWS SSM Run Command: send_command, then poll get_command_invocation to a terminal state.
        # Targets: instance_ids (comma-separated or a list) or tag ("Key=Value").
        "run-command": _spec(
            ("document",),
            ("instance_ids", "tag", "commands", "parameters", "comment", "max_concurrency"),
            summary="run an SSM document on instances by id or tag",
        ),
    },
    "ecs": {
        "force-new-deployment": _spec(
            ("cluster", "service"),
            ("wait_stable_s",),
            summary="replace every task of a service (update_service forceNewDeployment)",
        ),
        "set-desired-count": _spec(
            ("cluster", "service", "count"),
            ("wait_stable_s",),
            undo="set-desired-count",
            summary="change a service's desired task count",
        ),
    },
    "lambda": {
        "invoke": _spec(
            ("function",),
            ("payload", "qualifier"),
            summary="invoke a function synchronously; a function error fails the step",
        ),
    },
    "elb": {
        "deregister-target": _spec(
            ("target_group_arn", "target"),
            ("port", "wait_s"),
            undo="register-target",
            summary="drain a target from a load balancer target group",
        ),
        "register-target": _spec(
            ("target_group_arn", "target"),
            ("port", "wait_s"),
            undo="deregister-target",
            summary="put a target back into a load balancer target group",
        ),
    },
    "http": {
        "request": _spec(
            ("url",),
            ("method", "body", "expect_status"),
            summary="call an allowlisted URL (BOT_PLAYBOOK_HTTP_ALLOWLIST)",
        ),
    },
    "shell": {
        "run": _spec(
            ("command",),
            ("args",),
            summary="run an allowlisted command (embedded default only)",
        ),
    },
    "generator": {
        # the embedded default's log generator: ends a running scenario the way a fix would
        "end-scenario": _spec(
            ("scenario",),
            ("host",),
            summary="end a generated scenario on a host (embedded default only)",
        ),
    },
}


def action_spec(executor: str, action: str) -> ActionSpec | None:
    return CATALOG.get(executor, {}).get(action)
