"""REST API for remediation runs under /api/v1: auto-resolve (dry run or confirm), batch,
runs of an incident, one run, approve and cancel.

``POST /incidents/{id}/auto-resolve`` with ``dry_run`` (the default) answers the plan a person
would confirm: steps, targets, parameters, risk, confidence with reasons, the gate's verdict and
the plan's fingerprint. Sending that ``fingerprint`` back with ``dry_run: false`` starts the run
(409 if the plan changed since). ``Idempotency-Key`` makes a repeated start answer the same run.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from bot.auth import Caller
from bot.errors import BotError, Conflict, NotFound, PermanentError, PolicyViolation
from bot.openapi import MAX_INT
from playbooks.model import PlannedStep, RunPreview, RunView, Verdict
from playbooks.service import Remediation

SURFACE = "api"


RunId = Annotated[int, Path(ge=1, le=MAX_INT)]


class AutoResolveRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # confirming (dry_run false) needs the fingerprint a dry run answered
        json_schema_extra={
            "anyOf": [
                {"properties": {"dry_run": {"const": True}}},
                {
                    "required": ["fingerprint"],
                    "properties": {"fingerprint": {"type": "string", "minLength": 1}},
                },
            ]
        },
    )
    dry_run: StrictBool = True  # 0 or "false" is not a decision to act
    playbook: str | None = Field(default=None, max_length=200)
    fingerprint: str | None = Field(default=None, max_length=64)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incidents: list[Annotated[str, Field(max_length=32)]] = Field(min_length=1, max_length=100)
    dry_run: StrictBool = True  # 0 or "false" is not a decision to act
    playbook: str | None = Field(default=None, max_length=200)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


def _value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def step_json(step: PlannedStep) -> dict[str, Any]:
    plan = step.plan
    return {
        "phase": step.phase,
        "index": step.index,
        "name": step.name,
        "reversible": step.reversible,
        "retries": step.retries,
        "executor": plan.executor,
        "action": plan.action,
        "target": plan.target,
        "description": plan.description,
        "params": {k: _value(v) for k, v in plan.params},
        "timeout_s": plan.timeout_s,
    }


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "decision": verdict.decision.value,
        "reason": verdict.reason,
        "checks": [{"code": c.code, "passed": c.passed, "text": c.text} for c in verdict.checks],
    }


def preview_json(p: RunPreview) -> dict[str, Any]:
    return {
        "incident": p.human_id,
        "playbook": p.playbook_id,
        "title": p.playbook_title,
        "category": p.category,
        "risk": p.risk,
        "target": p.target,
        "steps": [step_json(s) for s in p.steps],
        "rollback": [step_json(s) for s in p.rollback],
        "confidence": {"value": p.confidence.value, "reasons": list(p.confidence.reasons)},
        "verdict": verdict_json(p.verdict),
        "fingerprint": p.fingerprint,
        "verify_wait_s": p.verify_wait_s,
        "alternatives": list(p.alternatives),
    }


def run_json(run: RunView) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": run.id,
        "incident": f"INC-{run.incident_id}",
        "playbook": run.playbook_id,
        "status": run.status.value,
        "mode": run.mode.value,
        "target": run.target,
        "requested_by": run.requested_by,
        "approver": run.approver,
        "approval_expires_at": iso(run.approval_expires_at),
        "fingerprint": run.fingerprint,
        "detail": run.detail,
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
        "steps": [
            {
                "phase": s.phase,
                "index": s.index,
                "name": s.name,
                "status": s.status,
                "attempts": s.attempts,
                "output": s.output,
                "error": s.error,
                "duration_ms": round(s.duration_ms, 1),
            }
            for s in run.steps
        ],
    }


def _remediation(runtime: Any) -> Remediation:
    found: Remediation | None = getattr(runtime.operations, "remediation", None)
    if found is None:
        raise NotFound("playbooks are not set up on this bot")
    return found


async def auto_resolve(
    remediation: Remediation,
    incident: str,
    body: AutoResolveRequest,
    actor: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    if body.dry_run:
        preview = await remediation.preview(incident, actor, body.playbook)
        return {"dry_run": True, "plan": preview_json(preview)}
    if not body.fingerprint:
        raise PermanentError(
            "fingerprint: required to start a run; send the one a dry run answered"
        )
    run = await remediation.start(
        incident,
        actor,
        SURFACE,
        body.fingerprint,
        body.playbook,
        idempotency_key=f"{SURFACE}:{idempotency_key}" if idempotency_key else None,
    )
    return {"dry_run": False, "run": run_json(run)}


def make_runs_router(runtime: Any, caller: Any) -> APIRouter:
    """``runtime``: the :class:`bot.wiring.Runtime`; ``caller``: the authenticating dependency."""
    api = APIRouter(prefix="/api/v1", tags=["remediation"])
    authenticated = Depends(caller)

    @api.post("/incidents/{incident_id}/auto-resolve")
    async def auto(
        incident_id: str,
        body: AutoResolveRequest,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
        who: Caller = authenticated,
    ) -> dict[str, Any]:
        return await auto_resolve(
            _remediation(runtime), incident_id, body, who.identity, idempotency_key
        )

    @api.post("/incidents/batch-resolve")
    async def batch(body: BatchRequest, who: Caller = authenticated) -> dict[str, Any]:
        """Each incident gets its own answer; one failure never stops the others. Without a
        fingerprint per incident, confirming plans the run and starts it at once."""
        remediation = _remediation(runtime)
        items = []
        for incident in body.incidents:
            try:
                preview = await remediation.preview(incident, who.identity, body.playbook)
                if body.dry_run:
                    items.append({"incident": incident, "ok": True, "plan": preview_json(preview)})
                    continue
                run = await remediation.start(
                    incident, who.identity, SURFACE, preview.fingerprint, preview.playbook_id
                )
                items.append({"incident": incident, "ok": True, "run": run_json(run)})
            except BotError as exc:
                items.append(
                    {"incident": incident, "ok": False, "error": str(exc), "kind": _kind(exc)}
                )
        return {"dry_run": body.dry_run, "items": items}

    @api.get("/incidents/{incident_id}/runs")
    async def runs_of(incident_id: str, who: Caller = authenticated) -> dict[str, Any]:
        found = await _remediation(runtime).runs(incident_id)
        return {"items": [run_json(r) for r in found], "total": len(found)}

    @api.get("/runs/{run_id}")
    async def one(run_id: RunId, who: Caller = authenticated) -> dict[str, Any]:
        return run_json(await _remediation(runtime).run(run_id))

    @api.post("/runs/{run_id}/approve")
    async def approve(run_id: RunId, who: Caller = authenticated) -> dict[str, Any]:
        return run_json(await _remediation(runtime).approve(run_id, who.identity, SURFACE))

    @api.post("/runs/{run_id}/cancel")
    async def cancel(
        run_id: RunId, body: CancelRequest | None = None, who: Caller = authenticated
    ) -> dict[str, Any]:
        reason = body.reason if body is not None else ""
        return run_json(await _remediation(runtime).cancel(run_id, who.identity, SURFACE, reason))

    return api


def _kind(exc: BotError) -> str:
    """The HTTP status the error would have had on its own (as a word)."""
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, PolicyViolation):
        return "refused"
    if isinstance(exc, Conflict):
        return "conflict"
    return "invalid"
