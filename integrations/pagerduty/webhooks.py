"""PagerDuty webhooks v3 in: verify, parse, map to a command on our incident.

``POST /webhooks/pagerduty``. The ``X-PagerDuty-Signature`` header (``v1=<hex>``, several
during a secret rotation) must match HMAC-SHA256 of the raw body under one of
``PAGERDUTY_WEBHOOK_SECRETS``; otherwise 401. Nothing is signed with a time, so each event is
applied once by its id: a replay answers ``{"status": "duplicate"}``.

Mapping: ``incident.acknowledged`` → acknowledge, ``incident.unacknowledged`` → unacknowledge,
``incident.resolved`` → resolve, ``incident.reassigned`` → assign (the assignees' names),
``incident.annotated`` → comment (the note). Our incident is found by the PagerDuty incident's
``incident_key`` (our dedup key ``incident-bot/INC-<n>/<hash>``, checked against the key we paged
with), or for notes by the PagerDuty incident we linked. When PagerDuty grouped several of our
pages into one incident (alert grouping), its ``incident_key`` names only the first: with
``PAGERDUTY_API_TOKEN`` the incident's alerts are listed (``GET /incidents/{id}/alerts``) and
every one of our incidents whose page is among them follows the event. The actor is
``pagerduty:<user id>`` on surface ``pagerduty``, so the change is never sent back to PagerDuty.

The command runs inline (a short transaction) before the answer, under a 4 s budget: PagerDuty
wants a 2xx within 5 s, and answering only after the change is durable means a failure (the
database away) answers 503 and PagerDuty delivers the event again, instead of being lost after
a 202. The command's idempotency key is the event id, so a redelivery racing the first one
still applies once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain.incident import Command, CommandKind, State
from bot.errors import BotError, ConfigError, Conflict, NotFound, PolicyViolation
from bot.operations import Operations
from bot.ports import Clock, SystemClock
from bot.store.repo import INCIDENTS
from bot.store.tables import WebhookEventRow
from integrations.pagerduty.grouping import AlertKeys
from integrations.pagerduty.pager import NOTE_MARK
from integrations.pagerduty.settings import ENV_PREFIX, PagerDutySettings

log = logging.getLogger(__name__)
PATH = "/webhooks/pagerduty"
SIGNATURE_HEADER = "X-PagerDuty-Signature"
SOURCE = "pagerduty"
BUDGET = 4.0
WEBHOOK_EVENTS = WebhookEventRow.__table__  # type: ignore[attr-defined]
OUR_KEY = re.compile(r"incident-bot/INC-(\d{1,18})/[0-9a-f]{16}")
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

COMMANDS = {
    "incident.acknowledged": CommandKind.ACKNOWLEDGE,
    "incident.unacknowledged": CommandKind.UNACKNOWLEDGE,
    "incident.resolved": CommandKind.RESOLVE,
    "incident.reassigned": CommandKind.ASSIGN,
    "incident.annotated": CommandKind.COMMENT,
}
ALREADY = {
    CommandKind.ACKNOWLEDGE: (State.ACKNOWLEDGED, "already acknowledged"),
    CommandKind.UNACKNOWLEDGE: (State.OPEN, "already open"),
    CommandKind.RESOLVE: (State.RESOLVED, "already resolved"),
}


# signatures ----------------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The ``v1=<hex>`` signature PagerDuty sends for ``body`` under ``secret``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether any ``v1=`` signature in ``header`` matches ``body`` under any secret."""
    if not header or not secrets:
        return False
    offered = [
        part.strip()[3:].encode("ascii", "replace")
        for part in header.split(",")
        if part.strip().startswith("v1=")
    ]
    matched = False
    for secret in secrets:
        expected = sign(body, secret)[3:].encode()
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)  # no early exit
    return matched


# payloads (vendor shapes: strict on what is used, tolerant of the rest) ---------------------


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Reference(_Vendor):
    id: str = Field(min_length=1, max_length=255)
    type: str = ""
    summary: str = ""
    html_url: str = ""


class IncidentData(_Vendor):
    id: str = Field(min_length=1, max_length=255)
    type: Literal["incident"]
    incident_key: str | None = None
    html_url: str = ""
    status: str = ""
    assignees: list[Reference] = []


class NoteData(_Vendor):
    type: Literal["incident_note"]
    content: str
    incident: Reference


class Event(_Vendor):
    id: str = Field(default="", max_length=200)
    event_type: str = Field(min_length=1, max_length=100)
    resource_type: str = ""
    occurred_at: datetime | None = None
    agent: Reference | None = None
    data: dict[str, Any]


class Envelope(_Vendor):
    event: Event


@dataclass(frozen=True, slots=True)
class Decision:
    """What one event asks of our incident; ``kind`` None: nothing (``reason`` says why)."""

    kind: CommandKind | None
    reason: str = ""
    incident_key: str = ""
    pagerduty_id: str = ""
    user: str = ""
    text: str = ""


def parse(body: bytes) -> Event:
    """The event in a webhook body; ValueError says what is wrong with it."""
    try:
        return Envelope.model_validate_json(body).event
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValueError(f"{where}: {first['msg']}") from None


def decide(event: Event) -> Decision:
    """Map an event to a command kind and its arguments (pure)."""
    kind = COMMANDS.get(event.event_type)
    if kind is None:
        return Decision(None, f"event type {event.event_type!r} is not used")
    try:
        if kind is CommandKind.COMMENT:
            note = NoteData.model_validate(event.data)
            if note.content.startswith(NOTE_MARK):
                return Decision(None, "a note the bot wrote")
            if not note.content.strip():
                return Decision(None, "an empty note")
            return Decision(kind, pagerduty_id=note.incident.id, text=note.content.strip())
        incident = IncidentData.model_validate(event.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Decision(None, f"unexpected {event.event_type} data ({where}: {first['msg']})")
    user = ""
    if kind is CommandKind.ASSIGN:
        user = ", ".join(a.summary.strip() or a.id for a in incident.assignees)[:255]
        if not user:
            return Decision(None, "reassigned to nobody")
    return Decision(kind, "", incident.incident_key or "", incident.id, user)


def actor_of(event: Event) -> str:
    agent = event.agent.id if event.agent is not None else ""
    return f"pagerduty:{agent if _ID.fullmatch(agent) else 'pagerduty'}"


# our incident --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ours:
    id: int
    state: State
    assignee: str


def find_ours(engine: Engine, decision: Decision, alert_keys: Sequence[str] = ()) -> list[Ours]:
    """Our incidents for the event, the one PagerDuty's ``incident_key`` names first: by dedup
    key (checked against the key we paged with) for the incident's key and every alert key,
    else by the PagerDuty incident we linked; empty when none is ours."""
    columns = (INCIDENTS.c.id, INCIDENTS.c.state, INCIDENTS.c.assignee)
    found: dict[int, Ours] = {}
    with engine.connect() as conn:
        for key in dict.fromkeys([decision.incident_key, *alert_keys]):
            match = OUR_KEY.fullmatch(key)
            if not match or int(match.group(1)) in found:
                continue
            row = conn.execute(
                select(*columns).where(
                    INCIDENTS.c.id == int(match.group(1)), INCIDENTS.c.page_ref == key
                )
            ).first()
            if row is not None:
                found[row.id] = Ours(row.id, State(row.state), row.assignee)
        if not found and decision.pagerduty_id and _ID.fullmatch(decision.pagerduty_id):
            row = conn.execute(
                select(*columns)
                .where(INCIDENTS.c.page_url.endswith(f"/incidents/{decision.pagerduty_id}"))
                .order_by(INCIDENTS.c.id.desc())
            ).first()
            if row is not None:
                found[row.id] = Ours(row.id, State(row.state), row.assignee)
    return list(found.values())


def handled(engine: Engine, event_id: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(WEBHOOK_EVENTS.c.event_id).where(
                    WEBHOOK_EVENTS.c.source == SOURCE, WEBHOOK_EVENTS.c.event_id == event_id
                )
            ).first()
            is not None
        )


def remember(engine: Engine, event_id: str, now: datetime) -> None:
    row = {"source": SOURCE, "event_id": event_id, "received_at": now}
    with engine.begin() as conn:
        insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(WEBHOOK_EVENTS)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
        )


# the route -----------------------------------------------------------------------------------


def _answer(status: str, **extra: str) -> JSONResponse:
    return JSONResponse({"status": status, **extra}, status_code=200)


def webhook_router(
    settings: PagerDutySettings,
    operations: Operations,
    engine: Engine,
    clock: Clock | None = None,
) -> APIRouter:
    """The ``POST /webhooks/pagerduty`` route; needs ``PAGERDUTY_WEBHOOK_SECRETS``."""
    secrets = [s.get_secret_value() for s in settings.webhook_secrets if s.get_secret_value()]
    if not secrets:
        raise ConfigError(
            f"{ENV_PREFIX}WEBHOOK_SECRETS: required to accept PagerDuty webhooks (the signing "
            "secret PagerDuty shows when the webhook subscription is created)"
        )
    clock = clock or SystemClock()
    router = APIRouter(tags=["webhooks"])
    alerts = AlertKeys(settings, settings.verify())

    @router.post(PATH, include_in_schema=False)
    async def pagerduty_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), secrets):
            missing = SIGNATURE_HEADER not in request.headers
            reason = "is missing" if missing else "does not match any configured secret"
            log.warning("PagerDuty webhook refused: %s %s", SIGNATURE_HEADER, reason)
            return JSONResponse({"error": f"{SIGNATURE_HEADER} {reason}"}, status_code=401)
        try:
            event = parse(body)
        except ValueError as exc:
            return JSONResponse({"error": f"not a PagerDuty v3 webhook: {exc}"}, status_code=400)
        event_id = event.id or request.headers.get("X-Webhook-Id", "").strip()[:200]
        if not event_id:
            return JSONResponse({"error": "the event has no id"}, status_code=400)
        try:
            async with asyncio.timeout(BUDGET):
                return await _handle(event, event_id)
        except TimeoutError:
            log.warning("PagerDuty event %s not handled within %gs", event_id, BUDGET)
            error = "busy; deliver again"
        except BotError as exc:
            log.warning("PagerDuty event %s not handled: %s", event_id, exc)
            error = str(exc)
        except Exception as exc:  # the database went away: PagerDuty delivers again
            log.exception("PagerDuty event %s failed", event_id)
            error = type(exc).__name__
        return JSONResponse({"error": error}, status_code=503, headers={"Retry-After": "5"})

    async def _handle(event: Event, event_id: str) -> JSONResponse:
        if await asyncio.to_thread(handled, engine, event_id):
            log.info("PagerDuty event %s was already handled", event_id)
            return _answer("duplicate")
        decision = decide(event)
        response = await _apply(event, event_id, decision)
        await asyncio.to_thread(remember, engine, event_id, clock.now())
        return response

    async def _apply(event: Event, event_id: str, decision: Decision) -> JSONResponse:
        if decision.kind is None:
            log.debug("PagerDuty event %s ignored: %s", event_id, decision.reason)
            return _answer("ignored", reason=decision.reason)
        keys: list[str] = []
        if alerts.enabled and _ID.fullmatch(decision.pagerduty_id):
            keys = await alerts.of(decision.pagerduty_id, BUDGET / 2)
        ours = await asyncio.to_thread(find_ours, engine, decision, keys)
        if not ours:
            log.debug("PagerDuty event %s is about an incident that is not ours", event_id)
            return _answer("ignored", reason="not an incident of this bot")
        answers = [
            await _apply_one(
                event, event_id if i == 0 else f"{event_id}:INC-{one.id}", decision, one
            )
            for i, one in enumerate(ours)
        ]
        first = dict(answers[0])
        if len(answers) > 1:  # PagerDuty grouped several of our pages into this incident
            if any(a["status"] == "applied" for a in answers):
                first["status"] = "applied"
            first["grouped"] = ", ".join(f"{a['incident']} {a['status']}" for a in answers[1:])
        return _answer(**first)

    async def _apply_one(event: Event, key: str, decision: Decision, ours: Ours) -> dict[str, str]:
        assert decision.kind is not None
        human = f"INC-{ours.id}"
        done = ALREADY.get(decision.kind)
        if (done is not None and ours.state is done[0]) or (
            decision.kind is CommandKind.ASSIGN and ours.assignee == decision.user
        ):
            reason = done[1] if done is not None else "already assigned"
            return {"status": "ignored", "incident": human, "reason": reason}
        command = Command(
            decision.kind,
            actor=actor_of(event),
            surface=SOURCE,
            user=decision.user,
            text=decision.text,
            idempotency_key=f"{SOURCE}:{key}"[:255],
        )
        try:
            outcome = await operations.execute(ours.id, command)
        except (Conflict, NotFound) as exc:
            log.info("PagerDuty %s on %s not applied: %s", event.event_type, human, exc)
            return {"status": "ignored", "incident": human, "reason": str(exc)}
        except PolicyViolation as exc:
            log.warning("PagerDuty %s on %s refused: %s", event.event_type, human, exc)
            return {"status": "refused", "incident": human, "reason": str(exc)}
        if outcome.duplicate:
            return {"status": "duplicate", "incident": human}
        return {"status": "applied", "incident": human, "message": outcome.message}

    return router


__all__ = [
    "PATH",
    "SIGNATURE_HEADER",
    "Decision",
    "Event",
    "decide",
    "parse",
    "sign",
    "verify_signature",
    "webhook_router",
]
