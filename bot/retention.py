"""Retention: purge what is older than the configured days (run daily by the scheduler)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from bot.store.repo import ALERTS, AUDIT, CARD_REFS, INCIDENTS, OUTBOX, TIMELINE
from bot.store.tables import IdempotencyRow, WebhookEventRow

log = logging.getLogger(__name__)
IDEMPOTENCY = IdempotencyRow.__table__  # type: ignore[attr-defined]
WEBHOOK_EVENTS = WebhookEventRow.__table__  # type: ignore[attr-defined]
IDEMPOTENCY_DAYS = 7


@dataclass(frozen=True, slots=True)
class Purged:
    incidents: int
    audit: int
    outbox: int


def purge(engine: Engine, now: datetime, retention_days: int, audit_days: int) -> Purged:
    """Delete resolved incidents (with their alerts, evidence, timeline and card references),
    delivered outbox rows past retention, old idempotency keys, and audit past its retention."""
    cutoff = now - timedelta(days=retention_days)
    with engine.begin() as conn:
        old = select(INCIDENTS.c.id).where(
            INCIDENTS.c.state == "resolved", INCIDENTS.c.resolved_at < cutoff
        )
        ids = [r[0] for r in conn.execute(old)]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for table in (ALERTS, TIMELINE, CARD_REFS):
                conn.execute(delete(table).where(table.c.incident_id.in_(chunk)))
            conn.execute(delete(INCIDENTS).where(INCIDENTS.c.id.in_(chunk)))
        outbox = conn.execute(
            delete(OUTBOX).where(OUTBOX.c.status != "pending", OUTBOX.c.created_at < cutoff)
        ).rowcount
        conn.execute(
            delete(IDEMPOTENCY).where(
                IDEMPOTENCY.c.created_at < now - timedelta(days=IDEMPOTENCY_DAYS)
            )
        )
        conn.execute(
            delete(WEBHOOK_EVENTS).where(
                WEBHOOK_EVENTS.c.received_at < now - timedelta(days=IDEMPOTENCY_DAYS)
            )
        )
        audit = conn.execute(
            delete(AUDIT).where(AUDIT.c.at < now - timedelta(days=audit_days))
        ).rowcount
    result = Purged(len(ids), audit or 0, outbox or 0)
    if any((result.incidents, result.audit, result.outbox)):
        log.info(
            "retention: purged %d incidents, %d audit entries, %d outbox messages",
            result.incidents,
            result.audit,
            result.outbox,
        )
    return result
