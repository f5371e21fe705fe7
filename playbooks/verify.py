"""Verify a run: re-run the incident's own rule over data newer than the run.

Cleared (the rule raises no alert for the incident's group over that window) means the
playbook worked. The rule runs exactly as the scheduler runs it (:func:`detectors.runner.run_rule`
through the deployment's search backend), with fresh memory, so the check sees only the data
that arrived after the run began.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.ports import SearchBackend
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.runner import run_rule
from detectors.window import Window


@dataclass(frozen=True, slots=True)
class Verification:
    cleared: bool
    hits: int
    window: Window
    detail: str


async def verify_cleared(
    rule: Rule,
    backend: SearchBackend,
    group_key: str,
    since: datetime,
    now: datetime,
    redact: Callable[[str], str],
    window: timedelta | None = None,
) -> Verification:
    """Search ``[since, now)`` (or the last ``window`` of it) with ``rule``; backend errors
    propagate (a TransientError means: ask again later)."""
    start = since if window is None else max(since, now - window)
    span = Window(start=start, end=max(now, start), new_since=start)
    result = await run_rule(rule, backend, span, redact, RuleMemory())
    fired = {alert.group_key for alert in result.alerts}
    cleared = group_key not in fired
    seen = f"{result.hits} matching event(s) since {start:%H:%M:%S} UTC"
    detail = (
        f"rule {rule.id} no longer fires for this incident ({seen})"
        if cleared
        else f"rule {rule.id} still fires for this incident ({seen})"
    )
    return Verification(cleared, result.hits, span, detail)
