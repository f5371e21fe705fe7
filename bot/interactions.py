"""Interaction -> authz -> Command -> transition -> timeline + audit + outbox, one transaction.

Every surface (console, REST API, CLI, later Slack, Teams and PagerDuty) ends here. A command
with an idempotency key that was seen before has no second effect; a refused command (role,
illegal transition, unknown incident) is audited too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from bot.authz import Role, Roles
from bot.domain.incident import (
    PEOPLE_COMMANDS,
    Command,
    CommandKind,
    Incident,
    parse_human_id,
    transition,
)
from bot.domain.page import PageAction
from bot.errors import BotError, Conflict, NotFound, PolicyViolation
from bot.pipeline.escalate import (
    EscalationPolicy,
    follow_state,
    note_messages,
    page_key,
    page_messages,
)
from bot.pipeline.notify import Router, enqueue, state_change
from bot.ports import Clock
from bot.store import audit
from bot.store.repo import INCIDENTS, TIMELINE, state_columns
from bot.store.repo import to_incident as row_to_incident
from bot.store.tables import EscalationRow, IdempotencyRow

log = logging.getLogger(__name__)
IDEMPOTENCY = IdempotencyRow.__table__  # type: ignore[attr-defined]
ESCALATIONS = EscalationRow.__table__  # type: ignore[attr-defined]
RETRIES = 5

NEEDED_ROLE: dict[CommandKind, Role] = {kind: Role.RESPONDER for kind in PEOPLE_COMMANDS}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: ``message`` is ready to show to the person who asked."""

    incident: Incident
    message: str
    duplicate: bool = False


class _StaleVersion(Exception):
    pass


class Interactions:
    def __init__(
        self,
        engine: Engine,
        roles: Roles,
        router: Router,
        clock: Clock,
        on_commit: Callable[[], None] = lambda: None,
        on_result: Callable[[Command, str], None] = lambda command, result: None,
        escalation: EscalationPolicy | None = None,
        on_reanalyse: Callable[[int], None] = lambda incident_id: None,
    ) -> None:
        self._escalation = escalation
        self._on_reanalyse = on_reanalyse
        self._engine = engine
        self._on_result = on_result
        self._roles = roles
        self._router = router
        self._clock = clock
        self._on_commit = on_commit

    @property
    def roles(self) -> Roles:
        return self._roles

    async def execute(
        self, incident_ref: str | int, command: Command, groups: Iterable[str] = ()
    ) -> Outcome:
        """Run ``command`` on the incident; raise NotFound, PolicyViolation or Conflict."""
        try:
            outcome = await asyncio.to_thread(
                self.execute_sync, incident_ref, command, tuple(groups)
            )
        except BotError:
            self._on_result(command, "refused")
            raise
        self._on_result(command, "duplicate" if outcome.duplicate else "applied")
        if command.kind is CommandKind.REANALYSE and not outcome.duplicate:
            self._on_reanalyse(outcome.incident.id)
        self._on_commit()
        return outcome

    def execute_sync(
        self, incident_ref: str | int, command: Command, groups: tuple[str, ...] = ()
    ) -> Outcome:
        if not command.correlation_id:
            command = _with_correlation(command)
        incident_id = (
            incident_ref if isinstance(incident_ref, int) else parse_human_id(str(incident_ref))
        )
        for _ in range(RETRIES):
            try:
                return self._attempt(incident_ref, incident_id, command, groups)
            except (_StaleVersion, IntegrityError):
                continue
        raise Conflict(f"INC-{incident_id} is changing too fast; try again")

    def _attempt(
        self,
        incident_ref: str | int,
        incident_id: int | None,
        command: Command,
        groups: tuple[str, ...],
    ) -> Outcome:
        now = self._clock.now()
        error: BotError | None = None
        outcome: Outcome | None = None
        with self._engine.begin() as conn:
            if command.idempotency_key:
                seen = conn.execute(
                    select(IDEMPOTENCY).where(IDEMPOTENCY.c.key == command.idempotency_key)
                ).first()
                if seen is not None:
                    return self._replay(conn, seen)
            row = None
            if incident_id is not None:
                row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).first()
            if row is None:
                name = f"INC-{incident_id}" if incident_id is not None else repr(incident_ref)
                error = NotFound(f"no incident {name}; list the incidents to find its id")
                _audit(conn, command, now, None, "", "", "refused", str(error))
            else:
                incident = row_to_incident(row)
                try:
                    if command.kind in NEEDED_ROLE:
                        self._roles.require(command.actor, NEEDED_ROLE[command.kind], groups)
                    paging = (CommandKind.ESCALATE, CommandKind.PAGE)
                    if command.kind in paging and self._escalation is None:
                        raise Conflict(
                            f"{incident.human_id} cannot be escalated: no pager is set up"
                        )
                    change = transition(incident, command, now)
                except (PolicyViolation, Conflict) as exc:
                    if command.idempotency_key:
                        # a twin of this request (a double click on another replica) may have
                        # committed since the key was checked: then this one is its duplicate
                        seen = conn.execute(
                            select(IDEMPOTENCY).where(IDEMPOTENCY.c.key == command.idempotency_key)
                        ).first()
                        if seen is not None:
                            return self._replay(conn, seen)
                    error = exc
                    state = incident.state.value
                    _audit(conn, command, now, incident.id, state, state, "refused", str(exc))
                else:
                    done = conn.execute(
                        update(INCIDENTS)
                        .where(
                            INCIDENTS.c.id == incident.id,
                            INCIDENTS.c.version == incident.version,
                        )
                        .values(**state_columns(change.after), version=incident.version + 1)
                    )
                    if done.rowcount != 1:
                        raise _StaleVersion
                    after = _replace_version(change.after, incident.version + 1)
                    conn.execute(
                        TIMELINE.insert(),
                        [
                            {
                                "incident_id": incident.id,
                                "at": now,
                                "actor": command.actor,
                                "surface": command.surface,
                                "kind": command.kind.value,
                                "text": change.summary,
                            }
                        ],
                    )
                    _audit(
                        conn,
                        command,
                        now,
                        incident.id,
                        incident.state.value,
                        after.state.value,
                        "applied",
                        change.summary,
                    )
                    change_id = command.idempotency_key or command.correlation_id
                    enqueue(
                        conn,
                        [
                            *state_change(
                                after,
                                self._router.targets(after),
                                change.summary,
                                change_id,
                                now,
                                by=command.actor,
                            ),
                            *self._pages(conn, row, after, command, change_id, now),
                        ],
                    )
                    outcome = Outcome(after, change.summary)
                    if command.idempotency_key:
                        conn.execute(
                            IDEMPOTENCY.insert(),
                            [
                                {
                                    "key": command.idempotency_key,
                                    "created_at": now,
                                    "incident_id": incident.id,
                                    "response_json": json.dumps({"message": change.summary}),
                                }
                            ],
                        )
        if error is not None:
            raise error
        assert outcome is not None
        log.info(
            "command %s on %s by %s via %s: %s",
            command.kind.value,
            outcome.incident.human_id,
            command.actor,
            command.surface,
            outcome.message,
        )
        return outcome

    def _pages(
        self,
        conn: Connection,
        row: Any,
        incident: Incident,
        command: Command,
        change_id: str,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Pager messages a command causes: escalate now, re-arm on reopen, or follow the
        new state (acknowledge, resolve) when the incident was paged."""
        policy = self._escalation
        if policy is None:
            return []
        timer = conn.execute(
            select(ESCALATIONS).where(ESCALATIONS.c.incident_id == incident.id)
        ).first()
        channel = timer.policy if timer is not None else "default"
        if command.kind in (CommandKind.ESCALATE, CommandKind.PAGE):
            rule = policy.rule_for(incident)
            channel = rule.channel if rule is not None else channel
            self._arm(conn, incident, channel, now, now, paged=True)
            return page_messages(incident, policy, PageAction.TRIGGER, channel, change_id, now)
        if command.kind in (CommandKind.REOPEN, CommandKind.REFIRE):
            rule = policy.rule_for(incident)
            if rule is None or rule.after is None:
                return []
            if rule.after > timedelta(0):
                self._arm(conn, incident, rule.channel, now, now + rule.after, paged=False)
                return []
            self._arm(conn, incident, rule.channel, now, now, paged=True)
            return page_messages(incident, policy, PageAction.TRIGGER, rule.channel, change_id, now)
        if command.kind is CommandKind.COMMENT:
            text = f"{command.actor}: {command.text.strip()}"
            return note_messages(
                incident, row.page_ref, channel, policy, command.surface, text, change_id, now
            )
        if row.state == incident.state.value:
            return []  # no state change (an assignment): nothing to tell the pager
        return follow_state(
            incident, row.page_ref, channel, policy, command.surface, change_id, now
        )

    @staticmethod
    def _arm(
        conn: Connection,
        incident: Incident,
        channel: str,
        now: datetime,
        due: datetime,
        paged: bool,
    ) -> None:
        conn.execute(ESCALATIONS.delete().where(ESCALATIONS.c.incident_id == incident.id))
        conn.execute(
            ESCALATIONS.insert(),
            [
                {
                    "incident_id": incident.id,
                    "policy": channel,
                    "due_at": due,
                    "status": "paged" if paged else "pending",
                    "paged_at": now if paged else None,
                    "created_at": now,
                }
            ],
        )
        if paged:
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == incident.id)
                .values(page_ref=page_key(incident))
            )

    def _replay(self, conn: Connection, seen: Any) -> Outcome:
        row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == seen.incident_id)).one()
        message = json.loads(seen.response_json)["message"]
        return Outcome(row_to_incident(row), message, duplicate=True)


def _with_correlation(command: Command) -> Command:
    return replace(command, correlation_id=uuid.uuid4().hex[:16])


def _replace_version(incident: Incident, version: int) -> Incident:
    return replace(incident, version=version)


def _audit(
    conn: Connection,
    command: Command,
    now: datetime,
    incident_id: int | None,
    before: str,
    after: str,
    result: str,
    detail: str,
) -> None:
    reason = command.reason or command.note or command.text or command.user
    if command.duration is not None:
        reason = f"{command.duration} {reason}".strip()
    audit.append(
        conn,
        [
            {
                "at": now,
                "actor": command.actor,
                "surface": command.surface,
                "action": command.kind.value,
                "incident_id": incident_id,
                "before_state": before,
                "after_state": after,
                "reason": reason,
                "result": result,
                "detail": detail,
                "correlation_id": command.correlation_id,
            }
        ],
    )
