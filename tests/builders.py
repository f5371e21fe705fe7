"""Small builders for domain values used across tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.hits import Alert, Category, Evidence, Severity
from bot.domain.incident import Incident, State
from bot.pipeline.ingest import IngestPolicy
from bot.pipeline.notify import Router, Target


def alert(
    at: datetime,
    rule: str = "web-5xx",
    service: str = "checkout",
    host: str = "web-1",
    new_events: int = 5,
    severity: Severity = Severity.HIGH,
    evidence: int = 2,
    group: tuple[tuple[str, str], ...] | None = None,
) -> Alert:
    lines = tuple(
        Evidence(
            f"ev-{service}-{at.timestamp():.0f}-{i}",
            at - timedelta(seconds=i),
            f"{at.isoformat()} host={host} service={service} status=503 n={i}",
        )
        for i in range(evidence)
    )
    return Alert(
        rule_id=rule,
        group=group if group is not None else (("service", service),),
        title=f"5xx burst on {service}",
        severity=severity,
        category=Category.APPLICATION,
        service=service,
        host=host,
        owner="web-oncall",
        first_seen=at - timedelta(minutes=1),
        last_seen=at,
        new_events=new_events,
        value=float(new_events),
        evidence=lines,
        events=new_events,
    )


def console_policy(
    realert: timedelta = timedelta(0),
    flap: timedelta = timedelta(minutes=30),
    card_refresh: timedelta = timedelta(seconds=60),
) -> IngestPolicy:
    router = Router((), (Target("console", "console"),))
    return IngestPolicy(router=router, flap_window=flap, card_refresh=card_refresh, realert=realert)


CREATED = datetime(2026, 11, 22, 9, 5, 59, tzinfo=UTC)


def incident(**changes: Any) -> Incident:
    """INC-31: an open, critical 5xx burst on checkout (17 events, 2 alerts) created at
    ``CREATED``; ``changes`` override any field."""
    base = Incident(
        id=31,
        group_key="web-5xx|service=checkout",
        rule_id="web-5xx",
        title="5xx burst on checkout",
        severity=Severity.CRITICAL,
        category=Category.APPLICATION,
        service="checkout",
        host="web-1",
        owner="web-oncall",
        state=State.OPEN,
        created_at=CREATED,
        updated_at=CREATED,
        first_seen=CREATED - timedelta(minutes=3),
        last_seen=CREATED,
        hit_count=17,
        alert_count=2,
    )
    return replace(base, **changes)


def mark_cards_posted(engine: Any, now: datetime) -> int:
    """As if the outbox had delivered every pending card post: the post is sent and the card
    has its reference (a card that is not posted yet gets no updates). Answers how many."""
    from sqlalchemy import select, update

    from bot.store.repo import CARD_REFS, OUTBOX

    with engine.begin() as conn:
        posts = conn.execute(
            select(OUTBOX).where(OUTBOX.c.status == "pending", OUTBOX.c.kind == "post")
        ).all()
        for p in posts:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == p.id).values(status="sent"))
            conn.execute(
                CARD_REFS.insert(),
                [
                    {
                        "incident_id": p.incident_id,
                        "surface": p.surface,
                        "channel": p.channel,
                        "message_id": f"msg-{p.incident_id}",
                        "ref_channel": p.channel,
                        "created_at": now,
                    }
                ],
            )
    return len(posts)
