"""The capabilities integrations implement. The core talks only to these (all async)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.domain.hits import Evidence, Hit, SearchQuery
from bot.domain.incident import Incident
from bot.domain.rca import RcaReport


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Health:
    status: HealthStatus
    reason: str = ""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock (timezone-aware UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@runtime_checkable
class SearchBackend(Protocol):
    async def search(self, query: SearchQuery) -> list[Hit]: ...

    async def check(self) -> Health: ...


@dataclass(frozen=True, slots=True)
class RcaContext:
    """What an RCA engine may look at besides the incident and its evidence."""

    related: Sequence[Incident] = ()  # incidents co-firing on the same host or service
    query: str = ""
    window: str = ""  # the rule's window, e.g. "5m"
    timeline: Sequence[str] = ()  # recent timeline lines, oldest first
    force: bool = False  # asked again by a person ("Re-analyse"): no cached answer


class RcaEngine(Protocol):
    async def explain(
        self, incident: Incident, evidence: Sequence[Evidence], context: RcaContext
    ) -> RcaReport: ...


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a card lives on a surface, so it can be updated and replied to."""

    surface: str
    channel: str
    message_id: str


class ChatSurface(Protocol):
    """Somewhere cards are posted. ``card`` is a :class:`bot.domain.card.Card`."""

    name: str

    async def post(self, card: object, channel: str) -> MessageRef: ...

    async def update(self, ref: MessageRef, card: object) -> None: ...

    async def reply(self, ref: MessageRef, text: str) -> None: ...

    async def check(self) -> Health: ...


@dataclass(frozen=True, slots=True)
class DigestLine:
    """One incident waiting for its own card, listed in a channel's storm digest."""

    incident_id: int
    human_id: str
    severity: str
    title: str
    url: str


@runtime_checkable
class DigestSurface(Protocol):
    """A surface that can stand one digest message in for many cards during a storm."""

    async def post_digest(self, channel: str, lines: Sequence[DigestLine]) -> MessageRef: ...

    async def update_digest(self, ref: MessageRef, lines: Sequence[DigestLine]) -> None: ...


@runtime_checkable
class DirectSurface(Protocol):
    """A surface that can message one person directly (Slack DM, Teams 1:1, the console).

    ``user`` is the person's id on that surface (``U0123`` on Slack, ``ann`` in the console).
    """

    async def direct(self, user: str, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PageRef:
    """What a pager answered: the page's key and, once known, a link to it."""

    key: str
    url: str = ""
    oncall: str = ""  # who is on call for it, as one line ("On call: Ann (L1), Bob (L2)")


class Pager(Protocol):
    """Somewhere incidents are paged. ``channel`` names a routing target (not a secret)."""

    name: str

    async def trigger(self, page: object, channel: str) -> PageRef: ...

    async def acknowledge(self, key: str, channel: str) -> None: ...

    async def resolve(self, key: str, channel: str) -> None: ...

    async def check(self) -> Health: ...


@runtime_checkable
class NotingPager(Protocol):
    """A pager whose incidents take notes (a comment made on our incident)."""

    async def note(self, key: str, text: str) -> None: ...


# remediation ---------------------------------------------------------------------------------

ParamValue = str | int | float | bool | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """Exactly what one playbook step would do, where, with which parameters (a dry run).

    ``target`` names where it acts in one string (``ecs:prod/web``, ``ssm:i-0abc``,
    ``lambda:recycle-worker``, ``http:https://ops.example.com/drain``, ``shell:systemctl``);
    ``description`` is the one line a person reads before confirming.
    """

    executor: str
    action: str
    target: str
    description: str
    params: tuple[tuple[str, ParamValue], ...]
    timeout_s: float

    def param(self, name: str, default: ParamValue | None = None) -> ParamValue | None:
        return next((value for key, value in self.params if key == name), default)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What running a plan answered. ``transient`` failures may be retried."""

    ok: bool
    output: str = ""
    error: str = ""
    transient: bool = False


class Executor(Protocol):
    """Something a playbook step calls (SSM, ECS, Lambda, ELB, HTTP, shell, the generator).

    ``plan`` checks the parameters and says what would run without changing anything; it raises
    ``PermanentError`` naming what is wrong (a URL off the allowlist, a missing parameter).
    ``run`` carries the plan out within ``plan.timeout_s``; it answers a failed ``StepResult``
    rather than raising, except ``TransientError`` for a failure worth retrying.
    """

    name: str

    async def plan(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> ExecutionPlan: ...

    async def run(self, plan: ExecutionPlan) -> StepResult: ...
