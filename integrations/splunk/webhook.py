"""Splunk's webhook alert action: ``POST /webhooks/splunk`` with the payload Splunk sends.

Splunk posts JSON ``{"sid", "search_name", "app", "owner", "results_link", "result"}`` where
``result`` is the first result row (multivalue fields as lists). The search name picks the
rule: a push-only rule declared under ``push.splunk_rules``, else a loaded rule whose title
(an imported saved search keeps its stanza name as title) or id is that name. An unknown name
answers 404 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.domain.hits import Alert, Category, Evidence, Hit, Severity
from bot.openapi import body_schema
from bot.push.auth import Denied, SenderGate
from bot.push.config import SplunkPushRule
from bot.push.receiver import PushReceiver
from detectors.model import Rule
from integrations.alertmanager.api import refused

EVIDENCE_TEXT = 2_000


class SplunkAlertAction(BaseModel):
    """The webhook alert action's body; fields newer Splunk versions add are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    sid: str = ""
    search_name: str
    app: str = ""
    owner: str = ""
    results_link: str = ""
    result: dict[str, str | list[str]] | None = None


class Target(BaseModel):
    """What the search name maps to, in the pipeline's terms."""

    model_config = ConfigDict(frozen=True)
    rule_id: str
    title: str
    severity: Severity
    category: Category
    group_by: tuple[str, ...]
    service: str
    owner: str
    runbook: str
    realert: timedelta


def targets(rules: Sequence[Rule], declared: Sequence[SplunkPushRule]) -> dict[str, Target]:
    """Search name -> target: declared push-only rules win over loaded rules' titles and ids."""
    out: dict[str, Target] = {}
    for rule in rules:
        target = Target(
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            category=rule.category,
            group_by=rule.group_by,
            service=rule.service,
            owner=rule.owner,
            runbook=rule.runbook,
            realert=rule.realert,
        )
        out.setdefault(rule.id, target)
        out[rule.title] = target
    for push in declared:
        out[push.search_name] = Target(
            rule_id=push.id,
            title=push.title or push.search_name,
            severity=push.severity,
            category=push.category,
            group_by=push.group_by,
            service=push.service,
            owner=push.owner,
            runbook=push.runbook,
            realert=push.realert,
        )
    return out


def _flat(result: Mapping[str, str | list[str]]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else ",".join(v) for k, v in result.items()}


def to_alert(target: Target, action: SplunkAlertAction, now: datetime) -> Alert:
    fields = _flat(action.result or {})
    raw = fields.get("_raw") or " ".join(
        f"{k}={v}" for k, v in sorted(fields.items()) if not k.startswith("_")
    )
    hit = Hit(now, fields, raw)
    group = tuple((name, fields.get(name, "")) for name in target.group_by)
    where = ", ".join(f"{k}={v}" for k, v in group if v)
    count = fields.get("count", "")
    return Alert(
        rule_id=target.rule_id,
        group=group,
        title=f"{target.title} ({where})" if where else target.title,
        severity=target.severity,
        category=target.category,
        service=target.service or fields.get("service", ""),
        host=fields.get("host", ""),
        owner=target.owner,
        first_seen=now,
        last_seen=now,
        new_events=1,
        value=float(count) if count.replace(".", "", 1).isdigit() else 1.0,
        evidence=(Evidence(hit.id, now, raw[:EVIDENCE_TEXT]),) if raw else (),
        runbook=target.runbook,
        events=1,
        search_link=action.results_link,
    )


def splunk_router(
    receiver: PushReceiver,
    gate: SenderGate,
    rules: Sequence[Rule],
    declared: Sequence[SplunkPushRule],
) -> APIRouter:
    router = APIRouter(tags=["push"])
    by_name = targets(rules, declared)

    @router.post(
        "/webhooks/splunk",
        summary="Splunk webhook alert action",
        openapi_extra=body_schema(SplunkAlertAction),
        responses={
            400: {"description": "the body is not a Splunk alert action (the error names why)"},
            401: {"description": "missing or wrong sender credentials"},
            404: {"description": "no rule for this search_name"},
            429: {"description": "the sender's rate limit; see Retry-After"},
        },
    )
    async def splunk_alert(request: Request) -> JSONResponse:
        sender = gate.authenticate(request.headers, "splunk")
        if isinstance(sender, Denied):
            return refused(sender)
        limited = gate.admit(sender)
        if limited is not None:
            return JSONResponse(
                {"error": f"sender {sender.name} is over its rate limit"},
                status_code=429,
                headers={"Retry-After": str(limited.retry_after)},
            )
        try:
            action = SplunkAlertAction.model_validate_json(await request.body())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return JSONResponse({"error": f"not a Splunk alert action: {problems}"}, 400)
        target = by_name.get(action.search_name)
        if target is None:
            return JSONResponse(
                {
                    "error": f"no rule for search_name {action.search_name!r}: import the saved "
                    f"search or declare it under push.splunk_rules"
                },
                status_code=404,
            )
        alert = to_alert(target, action, receiver.clock.now())
        result = await receiver.receive_alerts([alert], target.realert)
        gate.metrics.alerts.labels(sender.name, "firing").inc()
        touched = [*result.created, *result.reopened, *result.updated]
        incident = f"INC-{touched[0]}" if touched else None
        return JSONResponse({"rule": target.rule_id, "incident": incident})

    return router
