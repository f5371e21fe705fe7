"""Small builders for domain values used across tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.hits import Alert, Category, Evidence, Severity
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
