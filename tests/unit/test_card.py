from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.card import ActionKind, build_card, rca_line, status_line
from bot.domain.hits import Evidence
from bot.domain.incident import Command, CommandKind, Incident, State, transition
from bot.domain.rca import RcaReport, RcaStatus
from tests.builders import incident as make_incident

CREATED = datetime(2026, 11, 22, 9, 5, 59, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 10, 17, 42, tzinfo=UTC)
CONSOLE = "https://bot.example.org"


def incident(**changes: Any) -> Incident:
    return make_incident(**{"title": "5xx on checkout", **changes})


def act(before: Incident, kind: CommandKind, actor: str = "alice", **fields: Any) -> Incident:
    command = Command(kind=kind, actor=actor, surface="slack", **fields)
    return transition(before, command, NOW).after


def in_state(state: State) -> Incident:
    open_ = incident()
    if state is State.OPEN:
        return open_
    if state is State.ACKNOWLEDGED:
        return act(open_, CommandKind.ACKNOWLEDGE)
    if state is State.SUPPRESSED:
        return act(open_, CommandKind.SUPPRESS, duration=timedelta(hours=2), reason="deploy")
    return act(open_, CommandKind.RESOLVE)


@pytest.mark.parametrize(
    ("state", "labels"),
    [
        (State.OPEN, ["Acknowledge", "Suppress", "Resolve", "View"]),
        (State.ACKNOWLEDGED, ["Unacknowledge", "Suppress", "Resolve", "View"]),
        (State.SUPPRESSED, ["Unsuppress", "View"]),
        (State.RESOLVED, ["Reopen", "View"]),
    ],
)
def test_actions_per_state(state: State, labels: list[str]) -> None:
    card = build_card(in_state(state), (), None, CONSOLE)
    assert [a.label for a in card.actions] == labels
    assert [a.kind.value for a in card.actions] == [label.lower() for label in labels]
    assert card.state is state


def test_every_button_names_a_command_the_view_or_a_remediation_action() -> None:
    commands = {k.value for k in CommandKind}
    remediation = {"auto_resolve", "approve_run", "cancel_run"}
    assert "view" in {k.value for k in ActionKind} - commands
    assert {k.value for k in ActionKind} - commands <= {"view"} | remediation


def test_buttons_that_ask_for_input_and_their_styles() -> None:
    card = build_card(incident(), (), None, CONSOLE)
    by_kind = {a.kind: a for a in card.actions}
    assert by_kind[ActionKind.ACKNOWLEDGE].style == "primary"
    assert not by_kind[ActionKind.ACKNOWLEDGE].needs_input
    assert by_kind[ActionKind.SUPPRESS].needs_input
    assert by_kind[ActionKind.RESOLVE].needs_input
    assert by_kind[ActionKind.RESOLVE].style == "danger"
    assert not by_kind[ActionKind.VIEW].needs_input


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (State.OPEN, "Open since 2026-11-22 09:05 UTC"),
        (State.ACKNOWLEDGED, "Acknowledged by alice at 2026-11-22 10:17 UTC"),
        (State.SUPPRESSED, "Suppressed by alice until 2026-11-22 12:17 UTC"),
        (State.RESOLVED, "Resolved by alice at 2026-11-22 10:17 UTC"),
    ],
)
def test_status_line(state: State, text: str) -> None:
    assert status_line(in_state(state)) == text
    assert build_card(in_state(state), (), None, CONSOLE).status_line == text


def test_status_line_of_a_change_by_the_bot() -> None:
    cleared = act(incident(), CommandKind.CLEAR, actor="bot")
    assert status_line(cleared) == "Resolved by bot at 2026-11-22 10:17 UTC"


def test_status_line_without_a_change_time() -> None:
    acked = incident(state=State.ACKNOWLEDGED, state_changed_by="alice")
    assert status_line(acked) == "Acknowledged by alice"


@pytest.mark.parametrize(
    ("rca", "text"),
    [
        (None, "Root cause: analysis pending"),
        (
            RcaReport(RcaStatus.INSUFFICIENT_EVIDENCE, "too few lines"),
            "Root cause: insufficient evidence",
        ),
        (RcaReport(RcaStatus.UNAVAILABLE, "engine timed out"), "Root cause: analysis unavailable"),
        (
            RcaReport(RcaStatus.OK, "connection pool exhausted on db-1", confidence=0.8),
            "Root cause (80% confidence): connection pool exhausted on db-1",
        ),
        (
            RcaReport(RcaStatus.OK, "disk full", confidence=0.456),
            "Root cause (46% confidence): disk full",
        ),
    ],
)
def test_rca_line(rca: RcaReport | None, text: str) -> None:
    assert rca_line(rca) == text
    assert build_card(incident(), (), rca, CONSOLE).rca_line == text


@pytest.mark.parametrize("runbook", ["https://wiki/runbooks/5xx", "http://wiki/5xx"])
def test_runbook_link_for_urls(runbook: str) -> None:
    card = build_card(incident(runbook=runbook), (), None, CONSOLE)
    assert [(link.label, link.url) for link in card.links] == [
        ("Runbook", runbook),
        ("Open in console", f"{CONSOLE}/incidents/31"),
    ]


@pytest.mark.parametrize("runbook", ["", "restart the upstream", "wiki/runbooks/5xx", "ftp://x"])
def test_no_runbook_link_for_plain_text(runbook: str) -> None:
    card = build_card(incident(runbook=runbook), (), None, CONSOLE)
    assert [(link.label, link.url) for link in card.links] == [
        ("Open in console", f"{CONSOLE}/incidents/31"),
    ]


def test_card_carries_what_a_person_reads() -> None:
    card = build_card(incident(), (), None, "http://127.0.0.1:8080", muted=True)
    assert card.human_id == "INC-31"
    assert card.incident_id == 31
    assert card.severity == "critical"
    assert card.title == "5xx on checkout"
    assert card.service == "checkout"
    assert card.host == "web-1"
    assert card.hit_count == 17
    assert card.alert_count == 2
    assert card.first_seen == CREATED - timedelta(minutes=3)
    assert card.last_seen == CREATED
    assert card.muted
    assert card.links[-1].url == "http://127.0.0.1:8080/incidents/31"


def test_card_shows_the_top_five_evidence_lines() -> None:
    lines = tuple(
        Evidence(id=f"ev-{i}", time=NOW - timedelta(seconds=i), text=f"line {i}") for i in range(8)
    )
    card = build_card(incident(), lines, None, CONSOLE)
    assert [e.id for e in card.evidence] == ["ev-0", "ev-1", "ev-2", "ev-3", "ev-4"]
    assert build_card(incident(), lines[:2], None, CONSOLE).evidence == lines[:2]


def test_a_muted_card_says_what_mutes_it() -> None:
    from bot.domain.card import mute_phrase

    assert mute_phrase("maintenance:sunday-patching") == "maintenance window 'sunday-patching'"
    assert mute_phrase("inhibit:INC-3") == "inhibition by INC-3"
    assert mute_phrase("silence:7") == "silence 7"
    assert mute_phrase("") == "a silence"
    card = build_card(incident(), (), None, "http://127.0.0.1:8080", muted_by="maintenance:sun")
    assert card.muted and card.muted_by == "maintenance:sun"
