"""A postmortem draft for one incident, built from its audit chain.

The chain already holds every fact a postmortem needs, in order: the ``detect`` entry (rule,
query, window), the ``rca`` entries (the answer, redacted before it was stored), every command
(acknowledge, suppress, resolve …), every ``playbook_*`` entry of every run, verification and the
resolution. :func:`build` reads them (plus the incident row for its title and times, and the
evidence lines the analysis cites, as stored) into a :class:`Postmortem`; :func:`to_json` renders
it (and :mod:`bot.postmortem_md` as Markdown). Nothing here reads the wall clock: ``now`` is
passed in, so the output is the same for the same chain.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.domain.incident import CommandKind
from bot.errors import NotFound
from bot.store import audit
from bot.store.repo import INCIDENTS, evidence_of

#: how far back "the rule fired N times" looks
RECENT = timedelta(days=7)
AUDIT = audit.AUDIT
COMMANDS = frozenset(k.value for k in CommandKind)
CHECKLIST = (
    "What fixed it, in one sentence",
    "Why it happened (the cause behind the root cause)",
    "Owner and due date for the lasting fix",
    "Could it have been detected earlier or more precisely?",
    "Runbook or playbook changes",
)


def utc(value: datetime) -> datetime:
    """A time without a zone is UTC (SQLite hands times back without one)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Detection:
    rule: str
    query: str
    window_start: str
    window_end: str
    group: str
    events: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry as the timeline shows it."""

    at: datetime
    actor: str
    surface: str
    action: str
    result: str
    text: str


@dataclass(frozen=True, slots=True)
class Cause:
    text: str
    evidence_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    id: str
    time: datetime
    text: str


@dataclass(frozen=True, slots=True)
class RootCause:
    engine: str
    status: str
    summary: str
    confidence: float | None
    causes: tuple[Cause, ...]
    evidence: tuple[EvidenceLine, ...]


@dataclass(frozen=True, slots=True)
class Step:
    phase: str
    name: str
    ok: bool
    attempts: int
    duration_ms: float
    output: str
    error: str


@dataclass(frozen=True, slots=True)
class Run:
    run: int
    playbook: str
    target: str
    started_by: str
    steps: tuple[Step, ...]
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class Postmortem:
    incident: str
    title: str
    severity: str
    service: str
    host: str
    rule: str
    state: str
    first_seen: datetime
    resolved_at: datetime | None
    resolved_by: str
    generated_at: datetime
    detection: Detection | None
    root_cause: RootCause | None
    actions: tuple[Entry, ...]
    runs: tuple[Run, ...]
    timeline: tuple[Entry, ...]
    time_to_acknowledge: timedelta | None
    time_to_resolve: timedelta | None
    suggestions: tuple[str, ...]
    chain_intact: bool


def build(engine: Engine, number: int, now: datetime) -> Postmortem:
    """The postmortem of INC-``number`` as of ``now``; :class:`NotFound` if there is none."""
    with Session(engine) as session:
        row = session.execute(select(INCIDENTS).where(INCIDENTS.c.id == number)).first()
        if row is None:
            raise NotFound(f"no incident INC-{number}: there is nothing to write a postmortem of")
        chain = session.execute(
            select(audit.AUDIT)
            .where(audit.AUDIT.c.incident_id == number)
            .order_by(audit.AUDIT.c.id)
        ).all()
        evidence = evidence_of(session, number, limit=500)
        fired = session.execute(
            select(func.count())
            .select_from(INCIDENTS)
            .where(INCIDENTS.c.rule_id == row.rule_id, INCIDENTS.c.created_at >= now - RECENT)
        ).scalar_one()
    entries = [_entry(r) for r in chain]
    data = [json.loads(r.data_json or "{}") for r in chain]
    first_seen = utc(row.first_seen)
    resolved_at = utc(row.resolved_at) if row.state == "resolved" and row.resolved_at else None
    acked = next(
        (e.at for e in entries if e.action == "acknowledge" and e.result == "applied"), None
    )
    runs = _runs(entries, data)
    resolved_by = row.state_changed_by if resolved_at is not None else ""
    facts = Postmortem(
        incident=f"INC-{number}",
        title=row.title,
        severity=row.severity,
        service=row.service,
        host=row.host,
        rule=row.rule_id,
        state=row.state,
        first_seen=first_seen,
        resolved_at=resolved_at,
        resolved_by=resolved_by,
        generated_at=now,
        detection=_detection(entries, data),
        root_cause=_root_cause(entries, data, evidence),
        actions=tuple(e for e in entries if e.action in COMMANDS),
        runs=runs,
        timeline=tuple(entries),
        time_to_acknowledge=acked - first_seen if acked else None,
        time_to_resolve=resolved_at - first_seen if resolved_at else None,
        suggestions=(),
        chain_intact=all(audit.entry_hash(r.prev_hash, dict(r._mapping)) == r.hash for r in chain),
    )
    return _with_suggestions(facts, entries, fired)


def _entry(row: Any) -> Entry:
    text = row.detail or row.reason
    if row.after_state and row.after_state != row.before_state:
        change = f"{row.before_state or '-'} → {row.after_state}"
        text = f"{change}: {text}" if text else change
    return Entry(utc(row.at), row.actor, row.surface, row.action, row.result, text)


def _detection(entries: Sequence[Entry], data: Sequence[dict[str, Any]]) -> Detection | None:
    for entry, d in zip(entries, data, strict=True):
        if entry.action == "detect":
            window = d.get("window") or {}
            return Detection(
                rule=str(d.get("rule", "")),
                query=str(d.get("query", "")),
                window_start=str(window.get("start", "")),
                window_end=str(window.get("end", "")),
                group=str(d.get("group", "")),
                events=int(d.get("events", 0)),
            )
    return None


def _root_cause(
    entries: Sequence[Entry], data: Sequence[dict[str, Any]], evidence: Sequence[Any]
) -> RootCause | None:
    found = [d for e, d in zip(entries, data, strict=True) if e.action == "rca"]
    if not found:
        return None
    d = found[-1]  # a re-analysis replaces the first answer
    causes = tuple(
        Cause(str(c.get("text", "")), tuple(str(i) for i in c.get("evidence_ids", [])))
        for c in d.get("causes", [])
    )
    cited = {i for c in causes for i in c.evidence_ids}
    lines = sorted(
        (EvidenceLine(e.id, utc(e.time), e.text) for e in evidence if e.id in cited),
        key=lambda e: (e.time, e.id),
    )
    confidence = d.get("confidence")
    return RootCause(
        engine=str(d.get("engine", "")),
        status=str(d.get("status", "")),
        summary=str(d.get("summary", "")),
        confidence=float(confidence) if confidence is not None else None,
        causes=causes,
        evidence=tuple(lines),
    )


def _runs(entries: Sequence[Entry], data: Sequence[dict[str, Any]]) -> tuple[Run, ...]:
    order: list[int] = []
    by_run: dict[int, list[tuple[Entry, dict[str, Any]]]] = {}
    for entry, d in zip(entries, data, strict=True):
        if not entry.action.startswith("playbook_") or "run" not in d:
            continue
        run = int(d["run"])
        if run not in by_run:
            order.append(run)
        by_run.setdefault(run, []).append((entry, d))
    runs = []
    for run in order:
        items = by_run[run]
        first, first_data = items[0]
        steps = tuple(
            Step(
                phase=str(d.get("phase", "step")),
                name=str(d.get("name", "")),
                ok=bool(d.get("ok")),
                attempts=int(d.get("attempts", 1)),
                duration_ms=float(d.get("duration_ms", 0.0)),
                output=str(d.get("output", "")),
                error=str(d.get("error", "")),
            )
            for e, d in items
            if e.action == "playbook_step_finished"
        )
        statuses = [d["run_status_after"] for _, d in items if d.get("run_status_after")]
        last = next((e for e, d in reversed(items) if d.get("run_status_after")), items[-1][0])
        runs.append(
            Run(
                run=run,
                playbook=str(first_data.get("playbook", "")),
                target=str(first_data.get("target", "")),
                started_by=first.actor,
                steps=steps,
                outcome=statuses[-1] if statuses else last.action.removeprefix("playbook_"),
                detail=last.text,
            )
        )
    return tuple(runs)


def _with_suggestions(pm: Postmortem, entries: Sequence[Entry], fired: int) -> Postmortem:
    out: list[str] = []
    if fired > 1:
        out.append(
            f"the rule {pm.rule} fired {fired} times in the {RECENT.days} days to "
            f"{pm.generated_at:%Y-%m-%d}: tune its threshold, or fix the cause for good"
        )
    if pm.resolved_by.startswith("playbook:"):
        playbook = pm.resolved_by.removeprefix("playbook:")
        by_hand = [r for r in pm.runs if r.playbook == playbook and r.started_by != "bot"]
        if by_hand:
            out.append(
                f"auto-resolved by {playbook} after {by_hand[0].started_by} started it: "
                "consider auto: true for it"
            )
    resolve_at = pm.resolved_at
    acted = [
        e
        for e in entries
        if e.action in COMMANDS - {"clear", "refire", "expire"}
        and e.result == "applied"
        and (resolve_at is None or e.at < resolve_at)
        and e.action not in ("resolve", "auto_resolve")
    ]
    if pm.resolved_at is not None and pm.resolved_by == "bot" and not acted and not pm.runs:
        out.append(
            "resolved by itself (the condition cleared) with no action: "
            "raise the threshold or set realert"
        )
    for run in pm.runs:
        if run.outcome in ("failed", "rolled_back"):
            out.append(f"playbook {run.playbook} (run {run.run}) {run.outcome}: {run.detail}")
    people_resolved = any(e.action == "resolve" for e in pm.actions)
    if pm.resolved_at is not None and pm.time_to_acknowledge is None and people_resolved:
        out.append("resolved without an acknowledge: was anyone paged?")
    return replace(pm, suggestions=tuple(out))


# rendering -----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _entry_json(e: Entry) -> dict[str, Any]:
    return {
        "at": e.at.isoformat(),
        "actor": e.actor,
        "surface": e.surface,
        "action": e.action,
        "result": e.result,
        "text": e.text,
    }


def to_json(pm: Postmortem) -> dict[str, Any]:
    rc = pm.root_cause
    return {
        "incident": pm.incident,
        "summary": {
            "title": pm.title,
            "severity": pm.severity,
            "service": pm.service,
            "host": pm.host,
            "rule": pm.rule,
            "state": pm.state,
            "resolved_by": pm.resolved_by,
        },
        "generated_at": pm.generated_at.isoformat(),
        "impact": {"start": pm.first_seen.isoformat(), "end": _iso(pm.resolved_at)},
        "detection": None
        if pm.detection is None
        else {
            "rule": pm.detection.rule,
            "query": pm.detection.query,
            "window": {"start": pm.detection.window_start, "end": pm.detection.window_end},
            "group": pm.detection.group,
            "events": pm.detection.events,
        },
        "root_cause": None
        if rc is None
        else {
            "engine": rc.engine,
            "status": rc.status,
            "summary": rc.summary,
            "confidence": rc.confidence,
            "causes": [{"text": c.text, "evidence_ids": list(c.evidence_ids)} for c in rc.causes],
            "evidence": [
                {"id": e.id, "time": e.time.isoformat(), "text": e.text} for e in rc.evidence
            ],
        },
        "actions": [_entry_json(e) for e in pm.actions],
        "playbook_runs": [
            {
                "run": r.run,
                "playbook": r.playbook,
                "target": r.target,
                "started_by": r.started_by,
                "outcome": r.outcome,
                "detail": r.detail,
                "steps": [
                    {
                        "phase": s.phase,
                        "name": s.name,
                        "ok": s.ok,
                        "attempts": s.attempts,
                        "duration_ms": s.duration_ms,
                        "output": s.output,
                        "error": s.error,
                    }
                    for s in r.steps
                ],
            }
            for r in pm.runs
        ],
        "timeline": [_entry_json(e) for e in pm.timeline],
        "time_to_acknowledge_s": _seconds(pm.time_to_acknowledge),
        "time_to_resolve_s": _seconds(pm.time_to_resolve),
        "follow_ups": {"checklist": list(CHECKLIST), "suggestions": list(pm.suggestions)},
        "audit_chain_intact": pm.chain_intact,
    }
