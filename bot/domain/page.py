"""A page: what a pager is asked to raise for an incident (vendor-neutral)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain.incident import Incident
from bot.domain.rca import RcaReport

SUMMARY_MAX = 1024
KEY_MAX = 255


class PageAction(StrEnum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class Page:
    dedup_key: str
    summary: str
    severity: str  # critical | error | warning | info (the pager vocabulary)
    source: str
    component: str
    group: str
    kind: str  # the rule (a pager's "class")
    details: Mapping[str, str] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (text, href)


SEVERITY = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    "info": "info",
}


def dedup_key(incident: Incident) -> str:
    """Stable per incident: every trigger, acknowledge and resolve names the same page."""
    digest = hashlib.sha256(incident.group_key.encode()).hexdigest()[:16]
    return f"incident-bot/INC-{incident.id}/{digest}"[:KEY_MAX]


def build_page(
    incident: Incident, rca: RcaReport | None, console_url: str, search_link: str = ""
) -> Page:
    summary = f"[{incident.severity.value.upper()}] {incident.human_id} {incident.title}"
    details = {
        "incident": incident.human_id,
        "state": incident.state.value,
        "events": str(incident.hit_count),
        "alerts": str(incident.alert_count),
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "rule": incident.rule_id,
    }
    if rca is not None and rca.summary:
        details["root_cause"] = rca.summary[:2000]
    links = [("Incident in the console", f"{console_url}/incidents/{incident.id}")]
    if search_link:
        links.append(("The search", search_link))
    if incident.runbook.startswith(("http://", "https://")):
        links.append(("Runbook", incident.runbook))
    return Page(
        dedup_key=dedup_key(incident),
        summary=summary[:SUMMARY_MAX],
        severity=SEVERITY[incident.severity.value],
        source=incident.host or incident.service or "incident-bot",
        component=incident.service,
        group=incident.category.value,
        kind=incident.rule_id,
        details=details,
        links=tuple(links),
    )
