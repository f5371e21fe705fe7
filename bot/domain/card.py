"""The platform-neutral incident card; each surface renders it with a pure function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.hits import Evidence
from bot.domain.incident import Incident, State
from bot.domain.rca import RcaReport, RcaStatus


class ActionKind(StrEnum):
    """Button ids: stable strings that surfaces put in their payloads."""

    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    REANALYSE = "reanalyse"
    VIEW = "view"
    AUTO_RESOLVE = "auto_resolve"  # plan a playbook run ("Auto-resolve", "Run with approval")
    APPROVE_RUN = "approve_run"  # a second responder approves the run named by Card.run_id
    CANCEL_RUN = "cancel_run"  # stop the run named by Card.run_id before its next step


@dataclass(frozen=True, slots=True)
class CardAction:
    kind: ActionKind
    label: str
    style: str = "default"  # default | primary | danger
    needs_input: bool = False  # suppress asks for duration + reason, resolve for a note
    refused: str = ""  # why pressing it would be refused now (kill switch …): shown, not pressable


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Card:
    incident_id: int
    human_id: str
    severity: str
    title: str
    service: str
    host: str
    state: State
    status_line: str
    hit_count: int
    alert_count: int
    first_seen: datetime
    last_seen: datetime
    rca_line: str
    evidence: tuple[Evidence, ...]
    links: tuple[Link, ...]
    actions: tuple[CardAction, ...]
    muted: bool = False
    page_url: str = ""
    version: int = 0  # the incident's version: a button press names the card it was made on
    muted_by: str = ""  # what mutes it: silence:7, maintenance:NAME, inhibit:INC-3
    remediation_line: str = ""  # confidence and reasons, the gate's verdict, run progress
    run_id: int = 0  # the run an Approve/Cancel button acts on
    similar_line: str = ""  # "Like INC-812 (3 days ago, resolved by restart-web in 6 min)"


@dataclass(frozen=True, slots=True)
class RemediationPart:
    """What remediation adds to a card: its line, its buttons and the run they act on."""

    line: str = ""
    actions: tuple[CardAction, ...] = ()
    run_id: int = 0


@dataclass(frozen=True, slots=True)
class CardOptions:
    """What every card of this deployment offers besides its state's actions.

    ``remediation`` answers a card's remediation part from the database connection a card is
    built in and the incident's id (set when playbooks are loaded).
    """

    console_url: str
    escalate: bool = False  # a pager is set up
    reanalyse: bool = False  # an RCA engine worth asking again is set up
    remediation: Callable[[Any, int], RemediationPart] | None = field(default=None, compare=False)
    # the card's line about similar past incidents, from a connection and the incident's id
    similar: Callable[[Any, int], str] | None = field(default=None, compare=False)


ACTIONS: dict[State, tuple[CardAction, ...]] = {
    State.OPEN: (
        CardAction(ActionKind.ACKNOWLEDGE, "Acknowledge", "primary"),
        CardAction(ActionKind.SUPPRESS, "Suppress", needs_input=True),
        CardAction(ActionKind.RESOLVE, "Resolve", "danger", needs_input=True),
    ),
    State.ACKNOWLEDGED: (
        CardAction(ActionKind.UNACKNOWLEDGE, "Unacknowledge"),
        CardAction(ActionKind.SUPPRESS, "Suppress", needs_input=True),
        CardAction(ActionKind.RESOLVE, "Resolve", "danger", needs_input=True),
    ),
    State.SUPPRESSED: (CardAction(ActionKind.UNSUPPRESS, "Unsuppress"),),
    State.RESOLVED: (CardAction(ActionKind.REOPEN, "Reopen"),),
}

TOP_EVIDENCE = 5
RCA_LINE = 280  # the card carries the gist; the incident page has the whole analysis


def status_line(incident: Incident) -> str:
    when = incident.state_changed_at
    stamp = f" at {when:%Y-%m-%d %H:%M} UTC" if when else ""
    if incident.state is State.OPEN:
        if when and when > incident.created_at:
            return f"Reopened by {incident.state_changed_by}{stamp}"
        return f"Open since {incident.created_at:%Y-%m-%d %H:%M} UTC"
    if incident.state is State.SUPPRESSED and incident.suppressed_until:
        until = f"{incident.suppressed_until:%Y-%m-%d %H:%M} UTC"
        return f"Suppressed by {incident.state_changed_by} until {until}"
    return f"{incident.state.value.capitalize()} by {incident.state_changed_by}{stamp}"


def rca_line(rca: RcaReport | None) -> str:
    if rca is None:
        return "Root cause: analysis pending"
    if rca.status is RcaStatus.INSUFFICIENT_EVIDENCE:
        return "Root cause: insufficient evidence"
    if rca.status is RcaStatus.UNAVAILABLE:
        return "Root cause: analysis unavailable"
    summary = rca.summary if len(rca.summary) <= RCA_LINE else rca.summary[: RCA_LINE - 1] + "…"
    return f"Root cause ({rca.confidence:.0%} confidence): {summary}"


def mute_phrase(muted_by: str) -> str:
    """What mutes a card, for people: ``maintenance:sunday-patching`` -> "maintenance window
    'sunday-patching'"; a bare or unknown value reads "a silence"."""
    kind, _, name = muted_by.partition(":")
    if kind == "maintenance" and name:
        return f"maintenance window '{name}'"
    if kind == "inhibit" and name:
        return f"inhibition by {name}"
    if kind == "silence" and name:
        return f"silence {name}"
    return "a silence"


def build_card(
    incident: Incident,
    evidence: tuple[Evidence, ...],
    rca: RcaReport | None,
    console_url: str | CardOptions,
    muted: bool = False,
    search_link: str = "",
    page_url: str = "",
    oncall: str = "",
    remediation: RemediationPart | None = None,
    muted_by: str = "",
) -> Card:
    options = console_url if isinstance(console_url, CardOptions) else CardOptions(console_url)
    links = [Link("Open in console", f"{options.console_url}/incidents/{incident.id}")]
    if search_link:
        links.append(Link("Search", search_link))
    if page_url:
        links.append(Link("Page", page_url))
    if incident.runbook.startswith(("http://", "https://")):
        links.insert(0, Link("Runbook", incident.runbook))
    extra = []
    if options.escalate and incident.state in (State.OPEN, State.ACKNOWLEDGED) and not page_url:
        extra.append(CardAction(ActionKind.ESCALATE, "Escalate", "danger"))
    if options.reanalyse and incident.state is not State.RESOLVED:
        extra.append(CardAction(ActionKind.REANALYSE, "Re-analyse"))
    part = remediation or RemediationPart()
    actions = (
        *ACTIONS[incident.state],
        *part.actions,
        *extra,
        CardAction(ActionKind.VIEW, "View"),
    )
    return Card(
        incident_id=incident.id,
        human_id=incident.human_id,
        severity=incident.severity.value,
        title=incident.title,
        service=incident.service,
        host=incident.host,
        state=incident.state,
        status_line=status_line(incident) + (f" · {oncall}" if oncall else ""),
        hit_count=incident.hit_count,
        alert_count=incident.alert_count,
        first_seen=incident.first_seen,
        last_seen=incident.last_seen,
        rca_line=rca_line(rca),
        evidence=evidence[:TOP_EVIDENCE],
        links=tuple(links),
        actions=actions,
        muted=muted or bool(muted_by),
        muted_by=muted_by,
        page_url=page_url,
        version=incident.version,
        remediation_line=part.line,
        run_id=part.run_id,
    )
