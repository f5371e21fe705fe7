"""The Adaptive Card renderer: golden files per state, inputs, size budget, untrusted text.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/unit/test_teams_render.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.card import Card, CardOptions, build_card
from bot.domain.hits import Evidence, Severity
from bot.domain.incident import Command, CommandKind, Incident, State, transition
from bot.domain.rca import RcaReport, RcaStatus
from integrations.teams.render import (
    MAX_CARD_BYTES,
    MORE,
    card_revision,
    render_card,
    render_lines,
    render_notice,
)
from integrations.teams.views import VIEW_ONLY, without_buttons
from tests.builders import incident as make_incident

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "teams" / "cards"
CREATED = datetime(2026, 11, 22, 9, 5, 59, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 10, 17, 42, tzinfo=UTC)
CONSOLE = "https://bot.example.org"
SEARCH = "https://splunk.example.org/en-US/app/search/search?q=search%20index%3Dweb"
RUNBOOK = "https://runbooks.example.org/web/5xx"
QUIET_OR_FIX = [("Suppress", "suppress"), ("Resolve", "resolve")]


def incident(**changes: Any) -> Incident:
    return make_incident(**{"runbook": RUNBOOK, **changes})


def evidence(n: int = 3, length: int = 60) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(
            f"ev-{i}",
            CREATED - timedelta(seconds=i),
            f"host=web-1 service=checkout status=503 path=/cart n={i} " + "x" * max(0, length - 55),
        )
        for i in range(n)
    )


def act(before: Incident, kind: CommandKind, **fields: Any) -> Incident:
    command = Command(kind=kind, actor="teams:a1b2c3d4", surface="teams", **fields)
    return transition(before, command, NOW).after


def card_in(state: State, **changes: Any) -> Card:
    current = incident(**changes)
    if state is State.ACKNOWLEDGED:
        current = act(current, CommandKind.ACKNOWLEDGE)
    elif state is State.SUPPRESSED:
        current = act(current, CommandKind.SUPPRESS, duration=timedelta(hours=2), reason="deploy")
    elif state is State.RESOLVED:
        current = act(current, CommandKind.RESOLVE, note="rolled back")
    rca = RcaReport(RcaStatus.OK, "upstream payments timing out", confidence=0.72)
    return build_card(current, evidence(), rca, CONSOLE, search_link=SEARCH)


def check_golden(name: str, content: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == content, f"{name} changed: run with UPDATE_GOLDEN=1"


def walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object in the card, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def of_type(content: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in walk(content) if n.get("type") == kind]


@pytest.mark.parametrize("state", list(State))
def test_golden_card_per_state(state: State) -> None:
    check_golden(f"card_{state.value}", render_card(card_in(state)))


def test_golden_with_a_pager_and_a_page() -> None:
    options = CardOptions(CONSOLE, escalate=True, reanalyse=True)
    rca = RcaReport(RcaStatus.OK, "upstream payments timing out", confidence=0.72)
    unpaged = build_card(incident(), evidence(), rca, options, search_link=SEARCH)
    check_golden("card_escalate", render_card(unpaged))
    assert [e["verb"] for e in of_type(render_card(unpaged), "Action.Execute")] == [
        "acknowledge",
        "suppress",
        "resolve",
        "escalate",
        "reanalyse",
    ]
    paged = build_card(incident(), evidence(), rca, options, page_url="https://pd.example/i/1")
    assert "Page" in [a["title"] for a in of_type(render_card(paged), "Action.OpenUrl")]


def test_golden_muted_low_severity_without_links() -> None:
    card = replace(
        card_in(State.OPEN, severity=Severity.LOW, runbook=""), muted=True, links=(), evidence=()
    )
    check_golden("card_muted", render_card(card))


def test_golden_refusal_notice_and_answers() -> None:
    check_golden(
        "card_refused",
        render_card(card_in(State.OPEN), "you need the responder role (you are viewer)"),
    )
    check_golden("notice", render_notice("no incident INC-99; list the incidents to find its id"))
    check_golden("lines", render_lines("Active incidents", ["INC-1 · high · open · 5xx"], "More"))


@pytest.mark.parametrize(
    ("state", "buttons"),
    [
        (State.OPEN, [("Acknowledge", "acknowledge"), *QUIET_OR_FIX]),
        (State.ACKNOWLEDGED, [("Unacknowledge", "unacknowledge"), *QUIET_OR_FIX]),
        (State.SUPPRESSED, [("Unsuppress", "unsuppress")]),
        (State.RESOLVED, [("Reopen", "reopen")]),
    ],
)
def test_each_state_offers_its_buttons_with_incident_and_revision(
    state: State, buttons: list[tuple[str, str]]
) -> None:
    card = card_in(state)
    content = render_card(card)
    executes = of_type(content, "Action.Execute")
    assert [(e["title"], e["verb"]) for e in executes] == buttons
    assert {json.dumps(e["data"]) for e in executes} == {
        json.dumps({"incident_id": 31, "version": card_revision(card)})
    }
    assert content["version"] == "1.5" and content["type"] == "AdaptiveCard"
    titles = [a["title"] for a in of_type(content, "Action.OpenUrl")]
    assert titles == ["Runbook", "Open in console", "Search"]


def test_suppress_and_resolve_reveal_their_inputs() -> None:
    content = render_card(card_in(State.OPEN))
    shown = {a["title"]: a["card"] for a in of_type(content, "Action.ShowCard")}
    assert set(shown) == {"Suppress", "Resolve"}
    choice = of_type(shown["Suppress"], "Input.ChoiceSet")[0]
    assert [c["value"] for c in choice["choices"]] == ["30m", "1h", "4h", "24h", "custom"]
    texts = {t["id"]: t for t in of_type(shown["Suppress"], "Input.Text")}
    assert texts["reason"]["isRequired"] is True and "custom_duration" in texts
    assert [t["id"] for t in of_type(shown["Resolve"], "Input.Text")] == ["note"]


def test_revision_follows_the_incident_version() -> None:
    first, changed = card_in(State.OPEN), replace(card_in(State.ACKNOWLEDGED), version=2)
    assert card_revision(first) != card_revision(changed)
    assert card_revision(first) == card_revision(card_in(State.OPEN))


def test_log_text_is_never_read_as_markdown() -> None:
    sneaky = "[click here](https://evil.example) **urgent**"
    card = replace(
        card_in(State.OPEN, service=sneaky, title=sneaky),
        evidence=(Evidence("ev-x", CREATED, sneaky),),
    )
    content = render_card(card)
    runs = [r["text"] for r in of_type(content, "TextRun")]
    assert any(sneaky in text for text in runs)
    markdown = [b["text"] for b in of_type(content, "TextBlock")]
    assert not any("evil.example" in text for text in markdown)


def test_huge_evidence_and_rca_fit_the_teams_limit_with_a_console_link() -> None:
    card = replace(
        card_in(State.OPEN),
        evidence=evidence(5, length=20_000),
        rca_line="Root cause: " + "very long explanation " * 2_000,
    )
    content = render_card(card)
    size = len(json.dumps(content, ensure_ascii=False).encode())
    assert size <= MAX_CARD_BYTES
    more = [r for r in of_type(content, "TextRun") if r["text"] == MORE]
    assert more and more[0]["selectAction"]["url"] == f"{CONSOLE}/incidents/31"
    assert of_type(content, "Action.Execute"), "the buttons survive truncation"


def test_even_absurd_cards_render_within_budget() -> None:
    card = replace(
        card_in(State.OPEN),
        title="t" * 100_000,
        status_line="s" * 5_000,
        evidence=evidence(5, length=200_000),
        rca_line="r" * 100_000,
    )
    content = render_card(card, notice="n" * 50_000)
    assert len(json.dumps(content, ensure_ascii=False).encode()) <= MAX_CARD_BYTES


def test_small_cards_are_not_marked_truncated() -> None:
    content = render_card(card_in(State.OPEN))
    assert MORE not in json.dumps(content, ensure_ascii=False)


def test_golden_card_refreshing_per_user_and_a_view_only_footnote() -> None:
    card = card_in(State.OPEN)
    people = ("29:presser", "8:orgid:ann", "8:orgid:ben")
    check_golden("card_refresh", render_card(card, refresh_for=people))
    check_golden(
        "card_view_only",
        render_card(without_buttons(card), refresh_for=people, footnote=VIEW_ONLY),
    )


def test_refresh_names_the_incident_and_at_most_sixty_people_once_each() -> None:
    card = card_in(State.OPEN)
    people = ["29:presser", "29:presser", *(f"8:orgid:{n}" for n in range(80))]
    refresh = render_card(card, refresh_for=people)["refresh"]
    assert refresh["action"] == {
        "type": "Action.Execute",
        "title": "Refresh",
        "verb": "refresh",
        "data": {"incident_id": card.incident_id, "version": card_revision(card)},
    }
    users = refresh["userIds"]
    assert len(users) == 60 and len(set(users)) == 60 and users[0] == "29:presser"
    assert "refresh" not in render_card(card)  # nobody named: no refresh clause


def test_a_view_only_card_has_links_but_no_buttons_and_says_why() -> None:
    content = render_card(without_buttons(card_in(State.OPEN)), footnote=VIEW_ONLY)
    assert "actions" not in content and not of_type(content, "Action.Execute")
    assert of_type(content, "Action.OpenUrl")
    assert VIEW_ONLY in json.dumps(content, ensure_ascii=False)
