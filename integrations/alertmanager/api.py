"""The HTTP side of Alertmanager's API v2: acknowledge as Alertmanager does, hand over to the
push receiver. Every route asks for a sender's credentials; posts also spend its rate budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from bot.errors import PermanentError
from bot.pipeline.mute import muting_silence
from bot.push.auth import Denied, SenderGate
from bot.push.config import PushSender
from bot.push.matchers import matches_all, parse_matchers
from bot.push.receiver import PushReceiver
from bot.push.store import StoredAlert
from integrations.alertmanager.wire import ParseFailure, parse_alerts

VERSION = "0.25.0-compatible (incident-chatops-bot)"
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
#: Alertmanager's ``postableAlerts`` (its OpenAPI document, 0.25)
POSTABLE_ALERTS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "properties": {
            "labels": _STRINGS,
            "annotations": _STRINGS,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string", "format": "uri"},
        },
    },
}


def _go_json(payload: Any, status: int) -> Response:
    """What go-swagger writes: compact JSON and a newline."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n"
    return Response(body, status_code=status, media_type="application/json")


def _stamp(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def refused(denied: Denied) -> JSONResponse:
    return JSONResponse(
        {"error": denied.text},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="alertmanager", Bearer'},
    )


def alerts_router(receiver: PushReceiver, gate: SenderGate, started_at: datetime) -> APIRouter:
    router = APIRouter(tags=["push"])

    def who(request: Request) -> PushSender | Response:
        sender = gate.authenticate(request.headers, "alertmanager")
        return refused(sender) if isinstance(sender, Denied) else sender

    @router.post(
        "/api/v2/alerts",
        summary="Push alerts (Alertmanager API v2)",
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": POSTABLE_ALERTS}},
            }
        },
        responses={
            200: {"description": "accepted (empty body)"},
            400: {"description": "invalid alerts: Alertmanager's error text as a JSON string"},
            401: {"description": "missing or wrong sender credentials"},
            422: {"description": "a required field is missing"},
            429: {"description": "the sender's rate limit; see Retry-After"},
        },
    )
    async def post_alerts(request: Request) -> Response:
        sender = who(request)
        if isinstance(sender, Response):
            return sender
        limited = gate.admit(sender)
        if limited is not None:
            return JSONResponse(
                {"error": f"sender {sender.name} is over its rate limit"},
                status_code=429,
                headers={"Retry-After": str(limited.retry_after)},
            )
        now = receiver.clock.now()
        parsed = parse_alerts(await request.body(), now, receiver.settings.resolve_timeout)
        if isinstance(parsed, ParseFailure):
            return _go_json({"code": parsed.code, "message": parsed.message}, parsed.status)
        outcome = await receiver.receive(parsed.valid, sender.name)
        counted = gate.metrics.alerts
        counted.labels(sender.name, "firing").inc(outcome.firing)
        counted.labels(sender.name, "resolved").inc(outcome.resolved)
        if parsed.errors:
            counted.labels(sender.name, "invalid").inc(len(parsed.errors))
            return _go_json("; ".join(parsed.errors), 400)
        return Response(status_code=200)

    @router.get("/api/v2/alerts", summary="List active pushed alerts (Alertmanager API v2)")
    async def get_alerts(
        request: Request,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        unprocessed: bool = True,
        filter: list[str] = Query(default=[]),  # Alertmanager's parameter name
        receiver_re: str | None = Query(default=None, alias="receiver"),
    ) -> Response:
        sender = who(request)
        if isinstance(sender, Response):
            return sender
        try:
            matchers = parse_matchers(filter)
        except PermanentError as exc:  # Alertmanager answers 400 with the text
            return _go_json(str(exc), 400)
        found = await _listed(receiver)
        silences = receiver.silences()
        now = receiver.clock.now()
        out = []
        for alert in found:
            if not matches_all(matchers, alert.labels):
                continue
            rule = f"push-{alert.route}"
            silence = muting_silence(silences, {**alert.labels, "rule": rule}, now)
            if (silence is not None and not silenced) or (silence is None and not active):
                continue
            out.append(_gettable(alert, silence.id if silence else None))
        return _go_json(out, 200)

    @router.get("/api/v2/status", summary="Status (Alertmanager API v2)")
    async def status(request: Request) -> Response:
        sender = who(request)
        if isinstance(sender, Response):
            return sender
        return _go_json(
            {
                "cluster": {"name": "", "status": "disabled", "peers": []},
                "versionInfo": {
                    "version": VERSION,
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "",
                },
                "config": {"original": _config_text(receiver)},
                "uptime": _stamp(started_at),
            },
            200,
        )

    return router


async def _listed(receiver: PushReceiver) -> list[StoredAlert]:
    """What is applied, once the pushes this process answered before are (a sender reads its
    own writes, as with Alertmanager; during a storm's backlog, after at most 5 s)."""
    await receiver.settled(within=5.0)
    return await asyncio.to_thread(receiver.active)


def _gettable(alert: StoredAlert, silence_id: int | None) -> Mapping[str, Any]:
    return {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": _stamp(alert.starts_at),
        "endsAt": _stamp(alert.ends_at),
        "updatedAt": _stamp(alert.updated_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
        "receivers": [{"name": alert.route}],
        "status": {
            "state": "suppressed" if silence_id is not None else "active",
            "silencedBy": [str(silence_id)] if silence_id is not None else [],
            "inhibitedBy": [],
        },
    }


def _config_text(receiver: PushReceiver) -> str:
    """The routes in Alertmanager's terms (what ``amtool config show`` prints)."""
    lines = ["route:", "  receiver: default", "  routes:"]
    for compiled in receiver.routes:
        route = compiled.route
        lines += [
            f"  - receiver: {route.name}",
            f"    matchers: {list(route.matchers)}",
            f"    group_by: {list(route.group_by)}",
        ]
    return "\n".join(lines) + "\n"
