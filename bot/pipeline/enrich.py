"""Enrich: root-cause analysis after the card is out, under a deadline, then update the card.

New incidents are queued; a few workers ask the RCA engine, store its report, add a timeline
line and enqueue card updates. A slow or failing engine never delays a card or a page; an
incident whose analysis was pending when the process stopped is queued again at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from bot.domain.hits import Evidence
from bot.domain.incident import Incident
from bot.domain.rca import RcaReport, RcaStatus
from bot.pipeline.notify import MessageKind, Router, enqueue, message
from bot.ports import Clock, RcaContext, RcaEngine
from bot.store import audit
from bot.store.cards import rca_to_json
from bot.store.repo import (
    INCIDENTS,
    TIMELINE,
    evidence_of,
    timeline_of,
    to_incident,
)

log = logging.getLogger(__name__)
RELATED_WINDOW = timedelta(minutes=30)


class Enricher:
    def __init__(
        self,
        engine: Engine,
        rca: RcaEngine,
        router: Router,
        clock: Clock,
        timeout: timedelta,
        on_commit: Callable[[], None] = lambda: None,
        workers: int = 4,
        rule_context: Callable[[str], tuple[str, str]] = lambda rule_id: ("", ""),
        redact: Callable[[str], str] = lambda text: text,
        on_analysed: Callable[[int], None] = lambda incident_id: None,
    ) -> None:
        self._on_analysed = on_analysed  # after the report is stored (automatic remediation)
        self._redact = redact
        self._rule_context = rule_context  # rule id -> (query, window)
        self._engine = engine
        self._rca = rca
        self._router = router
        self._clock = clock
        self._timeout = timeout.total_seconds()
        self._on_commit = on_commit
        # most severe first, then oldest: in a storm the critical incidents are explained first
        self._queue: asyncio.PriorityQueue[tuple[int, int]] = asyncio.PriorityQueue()
        self._workers = workers
        self._forced: set[int] = set()
        self.done = 0
        # the engines' answers are awaited side by side; reading and storing take turns, so
        # that analyses never crowd out the card deliveries sharing this process and database
        self._database = asyncio.Lock()
        #: card first, analysis later: awaited before each queued analysis (the outbox's
        #: ``cards_out``, so that an analysis never competes with the card posts it follows)
        self.card_first: Callable[[], Awaitable[None]] | None = None

    def submit(
        self, incident_ids: Iterable[int], force: bool = False, severity_rank: int = 2
    ) -> None:
        """Queue incidents for analysis; ``force`` asks again even if an answer is cached."""
        for incident_id in incident_ids:
            if force:
                self._forced.add(incident_id)
            self._queue.put_nowait((0 if force else severity_rank, incident_id))

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def run(self, stop: asyncio.Event) -> None:
        pending = await asyncio.to_thread(self._pending)
        self.submit(pending)
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work(stop))

    async def _work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    _, incident_id = await self._queue.get()
            except TimeoutError:
                continue
            try:
                if self.card_first is not None:
                    await self.card_first()
                await self.analyse(incident_id)
            except Exception:  # one bad incident must not stop the others
                log.exception("analysis of INC-%s failed", incident_id)

    async def analyse(self, incident_id: int) -> RcaReport | None:
        async with self._database:
            loaded = await asyncio.to_thread(self._load, incident_id)
        if loaded is None:
            return None
        incident, evidence, related, timeline = loaded
        query, window = self._rule_context(incident.rule_id)
        force = incident_id in self._forced
        self._forced.discard(incident_id)
        context = RcaContext(
            related=related, query=query, window=window, timeline=timeline, force=force
        )
        started = self._clock.now()
        try:
            async with asyncio.timeout(self._timeout):
                report = await self._rca.explain(incident, evidence, context)
        except TimeoutError:
            report = RcaReport(
                RcaStatus.UNAVAILABLE, f"analysis timed out after {self._timeout:.0f}s"
            )
        elapsed = (self._clock.now() - started).total_seconds()
        async with self._database:
            await asyncio.to_thread(self._store, incident, report, elapsed)
        self.done += 1
        self._on_commit()
        self._on_analysed(incident.id)
        return report

    def _pending(self) -> list[int]:
        with self._engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    select(INCIDENTS.c.id)
                    .where(INCIDENTS.c.rca_status == "pending")
                    .where(INCIDENTS.c.active_key.is_not(None))
                    .order_by(INCIDENTS.c.id)
                )
            ]

    def _load(
        self, incident_id: int
    ) -> tuple[Incident, tuple[Evidence, ...], tuple[Incident, ...], tuple[str, ...]] | None:
        with Session(self._engine) as session:
            row = session.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).first()
            if row is None:
                return None
            incident = to_incident(row)
            evidence = tuple(evidence_of(session, incident_id, limit=200))
            since = incident.first_seen - RELATED_WINDOW
            related_rows = session.execute(
                select(INCIDENTS)
                .where(INCIDENTS.c.id != incident_id)
                .where(INCIDENTS.c.last_seen >= since)
                .where(
                    (INCIDENTS.c.host == incident.host) & (INCIDENTS.c.host != "")
                    | (INCIDENTS.c.service == incident.service) & (INCIDENTS.c.service != "")
                )
                .order_by(INCIDENTS.c.id.desc())
                .limit(10)
            )
            related = tuple(to_incident(r) for r in related_rows)
            lines = timeline_of(session, incident_id)[-20:]
            timeline = tuple(f"{t.at:%H:%M:%S} {t.kind}: {t.text}" for t in lines)
        return incident, evidence, related, timeline

    def _store(self, incident: Incident, report: RcaReport, elapsed: float) -> None:
        now = self._clock.now()
        engine_name = report.engine or "rca"
        text = f"root cause ({engine_name}, {elapsed:.1f}s): {report.summary}"
        targets = self._router.targets(incident)
        with self._engine.begin() as conn:
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == incident.id)
                .values(
                    rca_status=report.status.value,
                    rca_json=rca_to_json(replace(report, meta={})),
                    updated_at=now,
                )
            )
            conn.execute(
                TIMELINE.insert(),
                [
                    {
                        "incident_id": incident.id,
                        "at": now,
                        "actor": f"rca:{engine_name}",
                        "surface": "pipeline",
                        "kind": "rca",
                        "text": text,
                    }
                ],
            )
            # the audit chain keeps what was asked and answered (prompt hash, model, tokens,
            # latency, the parsed answer), never the evidence itself
            detail = (
                json.dumps(dict(report.meta), sort_keys=True)
                if report.meta
                else f"{report.status.value} in {elapsed:.1f}s"
            )
            audit.append(
                conn,
                [
                    {
                        "at": now,
                        "actor": f"rca:{engine_name}",
                        "surface": "pipeline",
                        "action": "rca",
                        "incident_id": incident.id,
                        "before_state": "",
                        "after_state": "",
                        "reason": report.status.value,
                        "result": "applied",
                        "detail": detail,
                        "correlation_id": "",
                        "data": rca_audit_data(report, elapsed, self._redact),
                    }
                ],
            )
            stamp = int(now.timestamp() * 1000)
            fresh = replace(incident, updated_at=now)
            enqueue(
                conn,
                [
                    message(
                        MessageKind.UPDATE,
                        fresh,
                        t,
                        f"rca:{t.surface}:{t.channel}:{incident.id}:{stamp}",
                        now,
                    )
                    for t in targets
                ],
            )


#: what the audit chain keeps of an analysis, from the engine's meta (Bedrock fills these)
AUDITED_META = (
    "prompt_sha256",
    "model_id",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "attempts",
    "stop_reason",
    "rejected",
    "fallback",
    "fallback_reason",
)


def rca_audit_data(
    report: RcaReport, elapsed: float, redact: Callable[[str], str]
) -> dict[str, object]:
    """The RCA's audit ``data``: prompt hash, model, the answer (redacted), never evidence."""
    meta = dict(report.meta)
    data: dict[str, object] = {
        "engine": report.engine,
        "status": report.status.value,
        "seconds": round(elapsed, 3),
        "prompt_sha256": meta.get("prompt_sha256", ""),
        "model": meta.get("model_id", ""),
        "summary": redact(report.summary),
        "confidence": report.confidence,
        "suggested_playbook": report.suggested_playbook,
        "causes": [
            {"text": redact(c.text), "evidence_ids": list(c.evidence_ids)} for c in report.causes
        ],
    }
    data.update({k: redact(meta[k]) for k in AUDITED_META[2:] if meta.get(k)})
    answer = meta.get("answer")
    if answer:
        cleaned = redact(answer)
        try:
            data["answer"] = json.loads(cleaned)
        except ValueError:
            data["answer"] = cleaned
    return data
