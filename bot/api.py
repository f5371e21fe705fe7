"""REST API under /api/v1: incidents, commands, rules, silences, audit, simulate."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from bot.auth import Caller
from bot.authz import Role
from bot.domain.durations import format_duration, parse_duration
from bot.domain.incident import Command, CommandKind, Incident, parse_human_id
from bot.errors import NotFound, PermanentError
from bot.openapi import DURATION_PATTERN, MAX_INT, body_schema, declared, matching
from bot.similar.service import Similar
from bot.store.cards import rca_from_json
from bot.store.repo import (
    ALERTS,
    RULE_STATE,
    SILENCES,
    IncidentFilter,
    audit_rows,
    evidence_of,
    get_incident_row,
    list_incidents,
    timeline_of,
    to_incident,
)
from bot.store.tables import AuditRow
from detectors.model import Rule
from detectors.types import rule_type
from integrations.local.snapshots import Snapshot

if TYPE_CHECKING:  # the CLI imports this module's helpers without building a bot
    from bot.wiring import Runtime

#: how long a simulated scenario keeps happening unless a playbook ends it (seconds)
SIMULATED_SCENARIO_LASTS = 300.0

COMMANDS = Literal[
    "acknowledge",
    "unacknowledge",
    "suppress",
    "unsuppress",
    "resolve",
    "reopen",
    "assign",
    "comment",
    "escalate",
    "reanalyse",
]

Duration = Annotated[
    str,
    declared(DURATION_PATTERN, 32),
    AfterValidator(matching(DURATION_PATTERN, "bad duration {!r}: use forms like 30s, 5m, 1h, 1d")),
]


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: COMMANDS
    duration: Duration | None = None
    reason: str = Field(default="", max_length=2000)
    note: str = Field(default="", max_length=2000)
    user: str = Field(default="", max_length=255)
    text: str = Field(default="", max_length=4000)


#: ``field=value`` or ``field!=value`` (bot.pipeline.matchers)
MATCHER_PATTERN = r"^[^=!]*[^=!\s][^=!]*!?=.*\S.*$"
MatcherText = Annotated[
    str,
    declared(MATCHER_PATTERN, 500),
    AfterValidator(matching(MATCHER_PATTERN, "bad matcher {!r}: use field=value or field!=value")),
]


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[MatcherText] = Field(min_length=1, max_length=20)
    duration: Duration = Field(description="between 1s and 30d, e.g. 2h")
    reason: str = Field(min_length=1, max_length=2000)


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(max_length=64)


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.human_id,
        "number": incident.id,
        "title": incident.title,
        "state": incident.state.value,
        "severity": incident.severity.value,
        "category": incident.category.value,
        "service": incident.service,
        "host": incident.host,
        "owner": incident.owner,
        "assignee": incident.assignee,
        "rule_id": incident.rule_id,
        "group_key": incident.group_key,
        "hit_count": incident.hit_count,
        "alert_count": incident.alert_count,
        "created_at": incident.created_at.isoformat(),
        "updated_at": incident.updated_at.isoformat(),
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "state_changed_by": incident.state_changed_by,
        "state_changed_at": _iso(incident.state_changed_at),
        "suppressed_until": _iso(incident.suppressed_until),
        "previous_state": incident.previous_state.value if incident.previous_state else None,
        "resolved_at": _iso(incident.resolved_at),
        "runbook": incident.runbook,
        "version": incident.version,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def audit_json(row: AuditRow) -> dict[str, Any]:
    """One audit entry as the API shows it (an ``AuditRow`` or a row of the audit table)."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "surface": row.surface,
        "action": row.action,
        "incident": f"INC-{row.incident_id}" if row.incident_id else None,
        "before": row.before_state,
        "after": row.after_state,
        "reason": row.reason,
        "result": row.result,
        "detail": row.detail,
        "correlation_id": row.correlation_id,
    }


def incident_number(incident_id: str) -> int:
    number = parse_human_id(incident_id)
    if number is None:
        raise NotFound(f"no incident {incident_id!r}: ids look like INC-12")
    return number


def build_command(
    body: CommandRequest, actor: str, surface: str, idempotency_key: str | None
) -> Command:
    duration = None
    if body.duration:
        try:
            duration = parse_duration(body.duration)
        except ValueError as exc:
            raise PermanentError(f"duration: {exc}") from None
    return Command(
        kind=CommandKind(body.command),
        actor=actor,
        surface=surface,
        duration=duration,
        reason=body.reason,
        note=body.note,
        user=body.user,
        text=body.text,
        idempotency_key=f"{surface}:{idempotency_key}" if idempotency_key else None,
    )


def incident_detail(engine: Engine, number: int) -> dict[str, Any]:
    with Session(engine) as session:
        row = get_incident_row(session, number)
        incident = to_incident(row)
        rca = rca_from_json(row.rca_json)
        evidence = evidence_of(session, number, limit=100)
        alerts = session.execute(select(ALERTS).where(ALERTS.c.incident_id == number)).all()
        audit, _ = audit_rows(session, number, limit=200)
        return {
            **incident_json(incident),
            "muted_by": row.muted_by,
            "rca_status": row.rca_status,
            "similar": Similar.for_engine(engine).page(session.connection(), number),
            "rca": None
            if rca is None
            else {
                "status": rca.status.value,
                "summary": rca.summary,
                "confidence": rca.confidence,
                "engine": rca.engine,
                "causes": [
                    {
                        "text": c.text,
                        "evidence_ids": list(c.evidence_ids),
                        "confidence": c.confidence,
                    }
                    for c in rca.causes
                ],
                "recommendations": list(rca.recommendations),
                "templates": [{"template": t, "count": n} for t, n in rca.templates],
                "related": list(rca.related),
            },
            "evidence": [
                {"id": e.id, "time": e.time.isoformat(), "text": e.text} for e in evidence
            ],
            "alerts": [
                {
                    "fingerprint": a.fingerprint,
                    "group": json.loads(a.group_json),
                    "count": a.count,
                    "value": a.value,
                    "first_seen": a.first_seen.isoformat(),
                    "last_seen": a.last_seen.isoformat(),
                }
                for a in alerts
            ],
            "timeline": [
                {
                    "at": t.at.isoformat(),
                    "actor": t.actor,
                    "surface": t.surface,
                    "kind": t.kind,
                    "text": t.text,
                }
                for t in timeline_of(session, number)
            ],
            "audit": [audit_json(a) for a in audit],
        }


def late_events(rule: Rule, shared: bool, allowance: timedelta | None = None) -> str:
    """How the rule counts an event that reaches the index late (docs/rules.md); ``allowance``:
    the lag its feed measured, for the rules held back by it."""
    kind = rule_type(rule.type)
    if kind.index_time:
        return "counted once, by index time"
    if not shared:
        return "by event time: counted only if still inside a window when it arrives"
    if kind.revisit(rule):
        return "past windows evaluated again when late events arrive"
    lag = "not measured yet" if allowance is None else f"{allowance.total_seconds():.0f} s"
    return f"held back by the measured lag ({lag}), then exact"


def rules_json(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.engine.connect() as conn:
        states = {r.rule_id: r for r in conn.execute(select(RULE_STATE))}
    out = []
    feeds = runtime.runner.feeds
    for rule in runtime.rules:
        st = states.get(rule.id)
        search: dict[str, Any] = {"shared": False, "reason": "shared searches are off"}
        if feeds is not None:
            specs = feeds.plan.feeds_of(rule.id)
            if not specs:
                search = {"shared": False, "reason": feeds.plan.alone.get(rule.id, "")}
            else:
                broken = "; ".join(f.broken for f in feeds.feeds(rule.id) if f.broken)
                search = {
                    "shared": not broken,
                    "feed": ", ".join(spec.name for spec in specs),
                    "with": sorted({o for spec in specs for o in spec.rules if o != rule.id}),
                    "reason": broken,
                }
        allowance = None if feeds is None else feeds.lag_allowance(rule.id)
        search["late_events"] = late_events(rule, bool(search["shared"]), allowance)
        lag = runtime.runner.search_lag.get(rule.id)
        search["search_lag_s"] = None if lag is None else round(lag, 1)
        search["coalesced_runs"] = runtime.runner.coalesced.get(rule.id, 0)
        out.append(
            {
                "id": rule.id,
                "title": rule.title,
                "type": rule.type,
                "enabled": rule.enabled,
                "severity": rule.severity.value,
                "category": rule.category.value,
                "interval": format_duration(rule.interval) if rule.interval else None,
                "schedule": rule.schedule,
                "window": format_duration(rule.window),
                "source": f"{rule.source_file}:{rule.source_line}",
                "search": search,
                "state": None
                if st is None
                else {
                    "last_run_at": _iso(st.last_run_at),
                    "last_success_at": _iso(st.last_success_at),
                    "next_run_at": _iso(st.next_run_at),
                    "last_window_end": _iso(st.last_window_end),
                    "last_duration_ms": round(st.last_duration_ms, 1),
                    "last_hits": st.last_hits,
                    "last_error": st.last_error,
                    "consecutive_failures": st.consecutive_failures,
                    "runs": st.runs,
                    "errors": st.errors,
                    "skipped": st.skipped,
                },
            }
        )
    return out


def make_router(runtime: Runtime, caller: Any) -> APIRouter:
    """``caller`` is the FastAPI dependency that authenticates and returns a Caller."""
    api = APIRouter(prefix="/api/v1", tags=["api"])
    authenticated = Depends(caller)

    @api.get("/incidents")
    async def incidents(
        state: Annotated[list[str], Query()] = [],  # noqa: B006
        severity: Annotated[list[str], Query()] = [],  # noqa: B006
        service: str = "",
        host: str = "",
        rule: str = "",
        q: str = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
        who: Caller = authenticated,
    ) -> dict[str, Any]:
        flt = IncidentFilter(tuple(state), tuple(severity), service, host, rule, q)

        def run() -> tuple[list[Incident], int]:
            with Session(runtime.engine) as session:
                return list_incidents(session, flt, limit, offset)

        items, total = await asyncio.to_thread(run)
        return {"items": [incident_json(i) for i in items], "total": total}

    @api.get("/incidents/{incident_id}")
    async def incident(incident_id: str, who: Caller = authenticated) -> dict[str, Any]:
        return await asyncio.to_thread(
            incident_detail, runtime.engine, incident_number(incident_id)
        )

    @api.post("/incidents/{incident_id}/commands")
    async def command(
        incident_id: str,
        body: CommandRequest,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
        who: Caller = authenticated,
    ) -> dict[str, Any]:
        cmd = build_command(body, who.identity, "api", idempotency_key)
        outcome = await runtime.interactions.execute(incident_number(incident_id), cmd)
        return {
            "incident": incident_json(outcome.incident),
            "message": outcome.message,
            "duplicate": outcome.duplicate,
        }

    @api.get("/rules")
    async def rules(who: Caller = authenticated) -> dict[str, Any]:
        items = await asyncio.to_thread(rules_json, runtime)
        return {"items": items, "total": len(items)}

    @api.get("/silences")
    async def silences(expired: bool = False, who: Caller = authenticated) -> dict[str, Any]:
        now = runtime.clock.now()

        def run() -> list[dict[str, Any]]:
            query = select(SILENCES).order_by(SILENCES.c.id.desc())
            if not expired:
                query = query.where(SILENCES.c.ends_at > now)
            with runtime.engine.connect() as conn:
                return [_silence_json(r) for r in conn.execute(query)]

        items = await asyncio.to_thread(run)
        return {"items": items, "total": len(items)}

    @api.post("/silences", status_code=201)
    async def add_silence(body: SilenceRequest, who: Caller = authenticated) -> dict[str, Any]:
        try:
            length = parse_duration(body.duration)
        except ValueError as exc:
            raise PermanentError(f"duration: {exc}") from None
        made = await runtime.operations.silence(body.matchers, length, body.reason, who.identity)

        def run() -> dict[str, Any]:
            with runtime.engine.connect() as conn:
                row = conn.execute(select(SILENCES).where(SILENCES.c.id == made.id)).one()
            return {**_silence_json(row), "matching_now": made.matching_now}

        return await asyncio.to_thread(run)

    @api.delete("/silences/{silence_id}")
    async def expire_silence(
        silence_id: Annotated[int, Path(ge=1, le=MAX_INT)], who: Caller = authenticated
    ) -> dict[str, Any]:
        runtime.roles.require(who.identity, Role.RESPONDER)

        def run() -> int:
            with runtime.engine.begin() as conn:
                return conn.execute(delete(SILENCES).where(SILENCES.c.id == silence_id)).rowcount

        if not await asyncio.to_thread(run):
            raise NotFound(f"no silence {silence_id}")
        runtime.runner.silences_changed()
        return {"deleted": silence_id}

    # GET /audit and /audit/incident/{id} are in bot.api_admin, with the configuration

    @api.post("/snapshots", status_code=201, openapi_extra=body_schema(Snapshot))
    async def snapshot(request: Request, who: Caller = authenticated) -> dict[str, Any]:
        """An endpoint snapshot (host health as JSON) into the local backend's events."""
        runtime.roles.require(who.identity, Role.RESPONDER)
        try:
            payload = await request.json()
        except ValueError:
            raise PermanentError("the body is not valid JSON") from None
        return {"events": await runtime.ingest_snapshot(payload)}

    @api.post("/simulate")
    async def simulate(body: SimulateRequest, who: Caller = authenticated) -> dict[str, Any]:
        runtime.roles.require(who.identity, Role.RESPONDER)
        if runtime.generator is None:
            raise PermanentError(
                "simulate needs the local search backend (BOT_SEARCH_BACKEND=local)"
            )
        # the scenario goes on (a new minute every minute) until a fix ends it or it runs out
        count = await asyncio.to_thread(
            runtime.generator.start, body.scenario, runtime.clock.now(), SIMULATED_SCENARIO_LASTS
        )
        return {"scenario": body.scenario, "events": count}

    return api


def _silence_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "matchers": json.loads(row.matchers_json),
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
        "created_by": row.created_by,
        "reason": row.reason,
    }
