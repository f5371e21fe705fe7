"""The console's remediation endpoints (JSON, for the page's script), and what every page shows
about remediation: the kill switch banner and the signed-in person's notifications.

- ``POST /console/incidents/{id}/plan`` ``{"playbook_id": …}``: the dry run (steps, targets,
  parameters, risk, confidence and the gate's verdict) the Auto-resolve dialog shows.
- ``POST /console/incidents/{id}/runs`` ``{"fingerprint": …, "playbook_id": …}``: Confirm;
  starts exactly the plan shown (the engine refuses a plan that changed since).
- ``POST /console/runs/{id}/approve`` and ``/cancel`` ``{"reason": …}``.
- ``GET /console/notifications``: direct messages to the signed-in person (outbox rows of kind
  ``direct`` to the console), newest first; the page's event stream says when one arrives.

The kill switch itself is toggled through ``POST /api/v1/config/kill-switch/activate`` and
``/deactivate`` (admin), as every other client does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select

from bot.api import incident_number
from bot.api_runs import step_json, verdict_json
from bot.auth import Caller
from bot.authz import Role, Roles
from bot.errors import PermanentError
from bot.store.repo import OUTBOX
from bot.store.runtime_config import KillSwitch, read_kill_switch
from playbooks.model import RunPreview, RunView
from playbooks.service import Remediation

SURFACE = "console"
NOTIFICATIONS = 20
NOT_SET_UP = "auto-resolve is not set up on this bot: no playbooks are loaded"


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    playbook_id: str = Field(default="", max_length=200)


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fingerprint: str = Field(min_length=1, max_length=128)
    playbook_id: str = Field(default="", max_length=200)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    at: str
    text: str


@dataclass(frozen=True, slots=True)
class Chrome:
    """What every console page shows besides its own content."""

    kill: KillSwitch
    admin: bool


def chrome(engine: Engine, roles: Roles, identity: str) -> Chrome:
    return Chrome(read_kill_switch(engine), roles.role_of(identity).allows(Role.ADMIN))


def notifications(engine: Engine, identity: str, limit: int = NOTIFICATIONS) -> list[Notification]:
    """Direct messages to ``identity`` (``console:ann``; rows may name ``ann`` alone)."""
    names = {identity, identity.removeprefix(f"{SURFACE}:")}
    query = (
        select(OUTBOX.c.id, OUTBOX.c.created_at, OUTBOX.c.payload_json)
        .where(
            OUTBOX.c.surface == SURFACE,
            OUTBOX.c.kind == "direct",
            OUTBOX.c.channel.in_(names),
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        try:
            text = str(json.loads(row.payload_json).get("text", ""))
        except (ValueError, AttributeError):
            text = ""
        out.append(Notification(int(row.id), f"{row.created_at:%Y-%m-%d %H:%M} UTC", text))
    return out


def preview_json(preview: RunPreview) -> dict[str, Any]:
    return {
        "incident_id": preview.incident_id,
        "human_id": preview.human_id,
        "playbook_id": preview.playbook_id,
        "playbook_title": preview.playbook_title,
        "category": preview.category,
        "risk": preview.risk,
        "target": preview.target,
        "steps": [step_json(s) for s in preview.steps],
        "rollback": [step_json(s) for s in preview.rollback],
        "confidence": {"value": preview.confidence.value, "reasons": preview.confidence.reasons},
        "verdict": verdict_json(preview.verdict),
        "fingerprint": preview.fingerprint,
        "verify_wait_s": preview.verify_wait_s,
        "alternatives": list(preview.alternatives),
    }


def run_json(run: RunView) -> dict[str, Any]:
    waiting = run.status.value == "awaiting_approval"
    message = (
        f"RUN-{run.id} ({run.playbook_id}) waits for a second responder to approve it"
        if waiting
        else f"RUN-{run.id} ({run.playbook_id}): {run.status.value.replace('_', ' ')}"
    )
    return {
        "id": run.id,
        "incident_id": run.incident_id,
        "playbook_id": run.playbook_id,
        "status": run.status.value,
        "mode": run.mode.value,
        "target": run.target,
        "requested_by": run.requested_by,
        "approver": run.approver,
        "message": message,
    }


def make_remediation_console(runtime: Any, caller: Callable[[Request], Caller]) -> APIRouter:
    """``runtime`` is the :class:`bot.wiring.Runtime` (its ``operations.remediation``)."""
    router = APIRouter(prefix="/console", include_in_schema=False)

    def remediation() -> Remediation:
        found: Remediation | None = getattr(runtime.operations, "remediation", None)
        if found is None:
            raise PermanentError(NOT_SET_UP)
        return found

    @router.post("/incidents/{incident_id}/plan")
    async def plan(incident_id: str, body: PlanBody, request: Request) -> dict[str, Any]:
        who = caller(request)
        preview = await remediation().preview(
            incident_number(incident_id), who.identity, body.playbook_id or None
        )
        return preview_json(preview)

    @router.post("/incidents/{incident_id}/runs")
    async def start(incident_id: str, body: StartBody, request: Request) -> dict[str, Any]:
        who = caller(request)
        key = request.headers.get("idempotency-key") or None
        run = await remediation().start(
            incident_number(incident_id),
            who.identity,
            SURFACE,
            body.fingerprint,
            playbook_id=body.playbook_id or None,
            idempotency_key=f"console:{key}"[:200] if key else None,
        )
        return run_json(run)

    @router.post("/runs/{run_id}/approve")
    async def approve(run_id: int, request: Request) -> dict[str, Any]:
        who = caller(request)
        return run_json(await remediation().approve(run_id, who.identity, SURFACE))

    @router.post("/runs/{run_id}/cancel")
    async def cancel(run_id: int, body: CancelBody, request: Request) -> dict[str, Any]:
        who = caller(request)
        return run_json(await remediation().cancel(run_id, who.identity, SURFACE, body.reason))

    @router.get("/notifications")
    async def notices(request: Request) -> dict[str, Any]:
        who = caller(request)
        found = await asyncio.to_thread(notifications, runtime.engine, who.identity)
        return {"items": [asdict(n) for n in found]}

    return router
