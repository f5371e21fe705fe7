"""Build an incident's card from what the database holds now (renders at delivery time)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.card import Card, CardOptions, build_card
from bot.domain.rca import Cause, RcaReport, RcaStatus
from bot.errors import NotFound
from bot.store.repo import INCIDENTS, evidence_of, to_incident


def rca_to_json(report: RcaReport) -> str:
    return json.dumps(asdict(report), separators=(",", ":"))


def rca_from_json(text: str | None) -> RcaReport | None:
    if not text:
        return None
    data = json.loads(text)
    return RcaReport(
        status=RcaStatus(data["status"]),
        summary=data["summary"],
        causes=tuple(
            Cause(c["text"], tuple(c["evidence_ids"]), float(c["confidence"]))
            for c in data.get("causes", ())
        ),
        recommendations=tuple(data.get("recommendations", ())),
        templates=tuple((t, int(n)) for t, n in data.get("templates", ())),
        related=tuple(data.get("related", ())),
        confidence=float(data.get("confidence", 0.0)),
        engine=data.get("engine", ""),
        suggested_playbook=data.get("suggested_playbook"),
        meta=dict(data.get("meta", {})),
    )


def load_card(session: Session, incident_id: int, options: str | CardOptions) -> Card:
    row = session.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident INC-{incident_id}")
    incident = to_incident(row)
    evidence = tuple(evidence_of(session, incident_id, limit=10))
    part = None
    if isinstance(options, CardOptions) and options.remediation is not None:
        part = options.remediation(session.connection(), incident_id)
    similar = ""
    if isinstance(options, CardOptions) and options.similar is not None:
        similar = options.similar(session.connection(), incident_id)
    card = build_card(
        incident,
        evidence,
        rca_from_json(row.rca_json),
        options,
        muted_by=row.muted_by or "",
        search_link=row.search_link,
        page_url=row.page_url,
        oncall=row.oncall,
        remediation=part,
    )
    return replace(card, similar_line=similar) if similar else card
