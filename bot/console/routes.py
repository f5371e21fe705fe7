"""Console pages. Buttons call the REST API; a server-sent event stream keeps pages live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import reports
from bot.api import incident_detail, incident_number, rules_json
from bot.api_reports import period
from bot.auth import Caller, Unauthenticated
from bot.charts.console import page_chart
from bot.console.remediation import chrome, make_remediation_console
from bot.domain.card import mute_phrase
from bot.store.cards import load_card
from bot.store.repo import INCIDENTS, IncidentFilter, audit_rows, list_incidents
from bot.wiring import Runtime
from detectors.rule_flags import rule_flags

HERE = Path(__file__).parent
HEARTBEAT = 15.0
POLL = 3.0
STATES = ("open", "acknowledged", "suppressed", "resolved")
SEVERITIES = ("critical", "high", "medium", "low", "info")


def make_console(runtime: Runtime, caller: Callable[[Request], Caller]) -> APIRouter:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["ago"] = _ago
    templates.env.globals["mute_phrase"] = mute_phrase
    router = APIRouter(include_in_schema=False)
    console_url = runtime.card_options

    def who(request: Request) -> Caller | None:
        try:
            return caller(request)
        except Unauthenticated:
            return None

    def page(request: Request, name: str, **context: Any) -> Response:
        user = who(request)
        if user is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        signed = runtime.settings.console_token is not None or runtime.settings.auth_mode != "token"
        context.update(user=user.identity, auth=signed)
        context.update(chrome=chrome(runtime.engine, runtime.roles, user.identity))
        return templates.TemplateResponse(request, name, context)

    @router.get("/", response_class=HTMLResponse)
    async def incidents(
        request: Request, state: str = "active", severity: str = "", q: str = ""
    ) -> Response:
        states = {"active": ("open", "acknowledged", "suppressed"), "all": ()}.get(
            state, (state,) if state in STATES else ()
        )
        flt = IncidentFilter(states, (severity,) if severity in SEVERITIES else (), text=q)

        def load() -> tuple[list[Any], int]:
            with Session(runtime.engine) as session:
                items, total = list_incidents(session, flt, limit=100)
                return [load_card(session, i.id, console_url) for i in items], total

        cards, total = await asyncio.to_thread(load)
        return page(
            request,
            "incidents.html",
            cards=cards,
            total=total,
            state=state,
            severity=severity,
            q=q,
            states=STATES,
            severities=SEVERITIES,
        )

    @router.get("/incidents/{incident_id}", response_class=HTMLResponse)
    async def incident(request: Request, incident_id: str) -> Response:
        number = incident_number(incident_id)

        def load() -> tuple[Any, dict[str, Any]]:
            with Session(runtime.engine) as session:
                card = load_card(session, number, console_url)
            return card, incident_detail(runtime.engine, number)

        card, detail = await asyncio.to_thread(load)
        cited = {eid for c in (detail["rca"] or {}).get("causes", []) for eid in c["evidence_ids"]}
        # the chart re-runs the rule's search: only for a signed-in visitor
        chart = await page_chart(runtime.charts, number) if who(request) else None
        return page(request, "incident.html", card=card, detail=detail, cited=cited, chart=chart)

    @router.get("/console/cards/{incident_id}", response_class=HTMLResponse)
    async def card_fragment(request: Request, incident_id: str) -> Response:
        number = incident_number(incident_id)
        if who(request) is None:
            raise Unauthenticated("log in first")

        def load() -> Any:
            with Session(runtime.engine) as session:
                return load_card(session, number, console_url)

        card = await asyncio.to_thread(load)
        return templates.TemplateResponse(request, "_card.html", {"card": card})

    @router.get("/rules", response_class=HTMLResponse)
    async def rules(request: Request) -> Response:
        items = await asyncio.to_thread(rules_json, runtime)
        flags = await asyncio.to_thread(rule_flags, runtime.rules, runtime.engine)
        lags = sorted(runtime.runner.index_lag.items())  # measured by this replica's runs
        feeds = runtime.runner.feeds.describe() if runtime.runner.feeds is not None else []
        return page(request, "rules.html", rules=items, flags=flags, index_lags=lags, feeds=feeds)

    @router.get("/maintenance", response_class=HTMLResponse)
    async def maintenance(request: Request) -> Response:
        views = await runtime.operations.maintenance.list()
        return page(request, "maintenance.html", windows=[v.as_json() for v in views])

    @router.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request) -> Response:
        def load() -> list[Any]:
            with Session(runtime.engine) as session:
                return audit_rows(session, None, limit=200)[0]

        rows = await asyncio.to_thread(load)
        return page(request, "audit.html", rows=rows)

    @router.get("/report", response_class=HTMLResponse)
    async def report(request: Request, since: str = "7d") -> Response:
        span = period(since)
        now = runtime.clock.now()
        found = await asyncio.to_thread(reports.build, runtime.engine, now - span, now)
        return page(request, "report.html", report=reports.to_json(found), since=since)

    @router.get("/events")
    async def events(request: Request) -> Response:
        if who(request) is None:
            raise Unauthenticated("log in first")
        return StreamingResponse(
            _stream(runtime, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    router.include_router(make_remediation_console(runtime, caller))
    return router


def static_files() -> StaticFiles:
    return StaticFiles(directory=str(HERE / "static"))


async def _stream(runtime: Runtime, request: Request) -> AsyncIterator[str]:
    """Changes from this process as they happen, plus a database poll for other processes."""
    cursor = runtime.clock.now()
    yield "retry: 2000\n\n"
    async with runtime.broadcaster.subscribe() as queue:
        idle = 0.0
        while not await request.is_disconnected():
            try:
                async with asyncio.timeout(POLL):
                    change = await queue.get()
                yield _event(change.incident_id, change.kind)
                idle = 0.0
                continue
            except TimeoutError:
                idle += POLL
            since, cursor = cursor, runtime.clock.now()
            for incident_id in await asyncio.to_thread(_changed_since, runtime, since):
                yield _event(incident_id, "update")
            if idle >= HEARTBEAT:
                idle = 0.0
                yield ": keep-alive\n\n"


def _changed_since(runtime: Runtime, since: datetime) -> list[int]:
    with runtime.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(INCIDENTS.c.id).where(INCIDENTS.c.updated_at > since).limit(200)
            )
        ]


def _event(incident_id: int, kind: str) -> str:
    return f"event: incident\ndata: {json.dumps({'id': incident_id, 'kind': kind})}\n\n"


def _ago(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"
