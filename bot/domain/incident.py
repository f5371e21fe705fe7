"""Incident state and the one function that decides every state change.

States: ``open -> acknowledged -> resolved``; ``suppressed`` until a time, then back to the state
it came from; ``resolved -> open`` on reopen (by a person, or when the alert fires again within
the flap window). :func:`transition` is pure: it returns the new state or raises ``Conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.hits import Category, Severity
from bot.errors import Conflict

MAX_SUPPRESS = timedelta(days=30)


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"


class CommandKind(StrEnum):
    """Everything that can happen to an incident. The first eight come from people."""

    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    ASSIGN = "assign"
    COMMENT = "comment"
    ESCALATE = "escalate"  # page now, whatever the escalation policy's timer says
    REANALYSE = "reanalyse"  # ask the RCA engine again
    # system events
    EXPIRE = "expire"  # a suppression ran out
    REFIRE = "refire"  # a resolved incident's alert fired again within the flap window
    CLEAR = "clear"  # the condition cleared (rule recovery)
    AUTO_RESOLVE = "auto_resolve"  # a playbook ran and verification saw the condition clear
    PAGE = "page"  # page now because a remediation failed (the escalation policy's pager)


PEOPLE_COMMANDS = frozenset(
    {
        CommandKind.ACKNOWLEDGE,
        CommandKind.UNACKNOWLEDGE,
        CommandKind.SUPPRESS,
        CommandKind.UNSUPPRESS,
        CommandKind.RESOLVE,
        CommandKind.REOPEN,
        CommandKind.ASSIGN,
        CommandKind.COMMENT,
        CommandKind.ESCALATE,
        CommandKind.REANALYSE,
    }
)


def human_id(number: int) -> str:
    return f"INC-{number}"


MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database


def parse_human_id(text: str) -> int | None:
    """``INC-12``, ``inc-12`` or ``12`` -> 12; anything else (or past any id) -> None."""
    value = text.strip().upper().removeprefix("INC-")
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        return None
    number = int(value)
    return number if number <= MAX_ID else None


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    group_key: str
    rule_id: str
    title: str
    severity: Severity
    category: Category
    service: str
    host: str
    owner: str
    state: State
    created_at: datetime
    updated_at: datetime
    first_seen: datetime
    last_seen: datetime
    hit_count: int = 0
    alert_count: int = 1
    previous_state: State | None = None
    suppressed_until: datetime | None = None
    state_changed_by: str = ""
    state_changed_at: datetime | None = None
    resolved_at: datetime | None = None
    assignee: str = ""
    runbook: str = ""
    version: int = 1

    @property
    def human_id(self) -> str:
        return human_id(self.id)

    @property
    def is_active(self) -> bool:
        return self.state is not State.RESOLVED


@dataclass(frozen=True, slots=True)
class Command:
    """A request to change an incident, from a person or from the bot itself."""

    kind: CommandKind
    actor: str
    surface: str
    duration: timedelta | None = None
    reason: str = ""
    note: str = ""
    user: str = ""
    text: str = ""
    idempotency_key: str | None = None
    correlation_id: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    """The decided change: the incident after it and the timeline line that explains it."""

    before: Incident
    after: Incident
    summary: str

    @property
    def state_changed(self) -> bool:
        return self.before.state is not self.after.state


def _refuse(incident: Incident, message: str) -> Conflict:
    return Conflict(f"{incident.human_id} {message}")


def transition(incident: Incident, command: Command, now: datetime) -> Transition:
    """Decide what ``command`` does to ``incident`` at ``now``; raise ``Conflict`` if illegal."""
    kind, state = command.kind, incident.state

    def to(new_state: State, summary: str, **changes: object) -> Transition:
        after = replace(
            incident,
            state=new_state,
            state_changed_by=command.actor,
            state_changed_at=now,
            updated_at=now,
            **changes,  # type: ignore[arg-type]
        )
        return Transition(incident, after, summary)

    if kind is CommandKind.ACKNOWLEDGE:
        if state is State.OPEN:
            return to(State.ACKNOWLEDGED, f"acknowledged by {command.actor}")
        if state is State.ACKNOWLEDGED:
            raise _refuse(incident, f"is already acknowledged by {incident.state_changed_by}")
        if state is State.SUPPRESSED:
            raise _refuse(incident, "is suppressed; unsuppress it before acknowledging")
        raise _refuse(incident, "is resolved; reopen it before acknowledging")

    if kind is CommandKind.UNACKNOWLEDGE:
        if state is State.ACKNOWLEDGED:
            return to(State.OPEN, f"unacknowledged by {command.actor}")
        raise _refuse(incident, f"is {state.value}, not acknowledged")

    if kind is CommandKind.SUPPRESS:
        if state is State.RESOLVED:
            raise _refuse(incident, "is resolved; there is nothing to suppress")
        if command.duration is None or command.duration <= timedelta(0):
            raise _refuse(incident, "cannot be suppressed without a duration (for example 1h)")
        if command.duration > MAX_SUPPRESS:
            raise _refuse(incident, "cannot be suppressed for more than 30 days")
        if not command.reason.strip():
            raise _refuse(incident, "cannot be suppressed without a reason")
        until = now + command.duration
        previous = incident.previous_state if state is State.SUPPRESSED else state
        return to(
            State.SUPPRESSED,
            f"suppressed by {command.actor} until {until:%Y-%m-%d %H:%M} UTC: {command.reason}",
            previous_state=previous,
            suppressed_until=until,
        )

    if kind in (CommandKind.UNSUPPRESS, CommandKind.EXPIRE):
        if state is not State.SUPPRESSED:
            raise _refuse(incident, f"is {state.value}, not suppressed")
        back = incident.previous_state or State.OPEN
        if kind is CommandKind.EXPIRE:
            if incident.suppressed_until is not None and incident.suppressed_until > now:
                raise _refuse(incident, "is still suppressed")
            summary = f"suppression ended; back to {back.value}"
        else:
            summary = f"unsuppressed by {command.actor}; back to {back.value}"
        return to(back, summary, previous_state=None, suppressed_until=None)

    if kind in (CommandKind.RESOLVE, CommandKind.CLEAR, CommandKind.AUTO_RESOLVE):
        if state is State.RESOLVED:
            raise _refuse(incident, f"is already resolved by {incident.state_changed_by}")
        if kind is CommandKind.CLEAR:
            summary = "condition cleared; resolved"
        elif kind is CommandKind.AUTO_RESOLVE:
            summary = command.note or f"auto-resolved by {command.actor}"
        else:
            summary = f"resolved by {command.actor}" + (f": {command.note}" if command.note else "")
        return to(
            State.RESOLVED, summary, previous_state=None, suppressed_until=None, resolved_at=now
        )

    if kind in (CommandKind.REOPEN, CommandKind.REFIRE):
        if state is not State.RESOLVED:
            raise _refuse(incident, f"is {state.value}; only a resolved incident can be reopened")
        summary = (
            "reopened: the alert fired again within the flap window"
            if kind is CommandKind.REFIRE
            else f"reopened by {command.actor}" + (f": {command.reason}" if command.reason else "")
        )
        return to(State.OPEN, summary, resolved_at=None)

    if kind is CommandKind.ASSIGN:
        if not command.user.strip():
            raise _refuse(incident, "cannot be assigned without a user")
        after = replace(incident, assignee=command.user.strip(), updated_at=now)
        return Transition(incident, after, f"assigned to {command.user.strip()} by {command.actor}")

    if kind is CommandKind.ESCALATE:
        if state is State.RESOLVED:
            raise _refuse(incident, "is resolved; reopen it before escalating")
        after = replace(incident, updated_at=now)
        return Transition(incident, after, f"escalated by {command.actor}: paging now")

    if kind is CommandKind.PAGE:
        if state is State.RESOLVED:
            raise _refuse(incident, "is resolved; nobody needs paging")
        after = replace(incident, updated_at=now)
        return Transition(incident, after, f"paging now: {command.reason or command.actor}")

    if kind is CommandKind.REANALYSE:
        after = replace(incident, updated_at=now)
        return Transition(incident, after, f"root-cause analysis requested by {command.actor}")

    if kind is CommandKind.COMMENT:
        if not command.text.strip():
            raise _refuse(incident, "cannot take an empty comment")
        after = replace(incident, updated_at=now)
        return Transition(incident, after, f"{command.actor}: {command.text.strip()}")

    raise _refuse(incident, f"does not understand {kind.value!r}")  # pragma: no cover
