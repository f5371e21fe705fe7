"""Values the gate, the engine and the surfaces exchange about remediation runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.ports import ExecutionPlan


class Decision(StrEnum):
    RUN = "run"  # every check passed: it may start now
    NEEDS_APPROVAL = "needs_approval"  # it may start once a second responder approves
    REFUSED = "refused"  # a check failed: nothing starts


class RunMode(StrEnum):
    MANUAL = "manual"  # a person pressed Auto-resolve and confirmed the plan
    APPROVAL = "approval"  # as manual, but a second responder must approve first
    AUTO = "auto"  # no press: the rule or playbook says auto and every check passed


class RunStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    VERIFYING = "verifying"
    ROLLING_BACK = "rolling_back"
    SUCCEEDED = "succeeded"  # ran and verified: the incident resolved
    FAILED = "failed"  # a step failed and there was nothing to roll back
    ROLLED_BACK = "rolled_back"  # failed or not verified, rollback ran
    INTERRUPTED = "interrupted"  # the process died mid-run; nothing re-runs by itself
    CANCELLED = "cancelled"  # by a person, or the kill switch before a step began
    EXPIRED = "expired"  # nobody approved within the window

    @property
    def live(self) -> bool:
        return self in LIVE


LIVE = frozenset(
    {RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING, RunStatus.VERIFYING, RunStatus.ROLLING_BACK}
)


@dataclass(frozen=True, slots=True)
class Check:
    """One check of the gate: its code (``kill_switch``, ``confidence`` …), whether it passed,
    and a sentence for people (``"confidence 0.72 is below the application threshold 0.90"``)."""

    code: str
    passed: bool
    text: str


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reason(self) -> str:
        """The first failed check's sentence, or why an approval is needed, or ``""``."""
        bad = self.failed
        if bad:
            return bad[0].text
        return next((c.text for c in self.checks if c.code == "approval"), "")


@dataclass(frozen=True, slots=True)
class Confidence:
    value: float
    reasons: tuple[str, ...]  # one line per contribution, e.g. "rule confidence 0.85"


@dataclass(frozen=True, slots=True)
class PlannedStep:
    phase: str  # step | rollback
    index: int
    name: str
    reversible: bool
    plan: ExecutionPlan
    retries: int = 0


@dataclass(frozen=True, slots=True)
class RunPreview:
    """The dry run shown before a person confirms: what would run, where, and the verdict."""

    incident_id: int
    human_id: str
    playbook_id: str
    playbook_title: str
    category: str
    risk: str
    target: str
    steps: tuple[PlannedStep, ...]
    rollback: tuple[PlannedStep, ...]
    confidence: Confidence
    verdict: Verdict
    fingerprint: str  # sha256 of steps, targets and parameters: an approval binds to it
    verify_wait_s: float = 0.0
    alternatives: tuple[str, ...] = ()  # other playbooks that match the incident


@dataclass(frozen=True, slots=True)
class StepView:
    phase: str
    index: int
    name: str
    status: str
    attempts: int = 0
    output: str = ""
    error: str = ""
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    incident_id: int
    playbook_id: str
    status: RunStatus
    mode: RunMode
    target: str
    requested_by: str
    approver: str = ""
    approval_expires_at: datetime | None = None
    fingerprint: str = ""
    detail: str = ""
    created_at: datetime | None = None
    finished_at: datetime | None = None
    steps: tuple[StepView, ...] = field(default=())
