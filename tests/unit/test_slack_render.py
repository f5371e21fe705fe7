"""Block Kit for cards, thread replies and storm digests, pinned by golden files.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/unit/test_slack_render.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.card import ActionKind, Card, CardOptions, build_card
from bot.domain.hits import Evidence, Severity
from bot.domain.incident import Command, CommandKind, Incident, transition
from bot.domain.rca import RcaReport, RcaStatus
from bot.ports import DigestLine
from integrations.slack.blockkit import MAX_BLOCKS, MAX_HEADER, MAX_SECTION, MORE
from integrations.slack.render import button_value, render_card, render_digest, render_reply
from tests.builders import incident as make_incident
from tests.fakes.slack import block_problems

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "slack" / "golden"
CONSOLE = "https://bot.example.org"
CREATED = datetime(2026, 11, 22, 9, 5, 59, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 10, 17, 42, tzinfo=UTC)
RCA = RcaReport(
    RcaStatus.OK,
    "Connection pool exhausted on checkout-db after the 09:58 deploy; 5xx follow from timeouts.",
    confidence=0.82,
    engine="heuristic",
)


def incident(**changes: Any) -> Incident:
    return make_incident(
        **{"severity": Severity.HIGH, "runbook": "https://runbooks.example.org/web-5xx", **changes}
    )


def act(before: Incident, kind: CommandKind, **fields: Any) -> Incident:
    command = Command(kind=kind, actor="slack:U0RESP001", surface="slack", **fields)
    return transition(before, command, NOW).after


EVIDENCE = (
    Evidence("ev-1", NOW - timedelta(seconds=3), "GET /cart 503 upstream=checkout-db:5432 t=30s"),
    Evidence("ev-2", NOW - timedelta(seconds=9), "pool exhausted: 50/50 <in use> & 12 waiting"),
)
SEARCH = "https://splunk.example.org/en-US/app/search/search?q=search%20index%3Dweb"


def card_for(name: str) -> Card:
    open_ = incident()
    if name == "open":
        return build_card(open_, EVIDENCE, None, CONSOLE, search_link=SEARCH)
    if name == "acknowledged_with_rca":
        options = CardOptions(CONSOLE, escalate=True, reanalyse=True)
        return build_card(act(open_, CommandKind.ACKNOWLEDGE), EVIDENCE, RCA, options)
    if name == "paged":
        options = CardOptions(CONSOLE, escalate=True, reanalyse=True)
        page = "https://acme.pagerduty.com/incidents/Q1W2E3"
        return build_card(open_, EVIDENCE, RCA, options, page_url=page)
    if name == "suppressed":
        after = act(open_, CommandKind.SUPPRESS, duration=timedelta(hours=2), reason="deploy")
        insufficient = RcaReport(RcaStatus.INSUFFICIENT_EVIDENCE, "")
        return build_card(after, EVIDENCE, insufficient, CONSOLE, muted=True)
    if name == "resolved":
        after = act(open_, CommandKind.RESOLVE, note="rolled back")
        return build_card(after, EVIDENCE, RCA, CONSOLE)
    if name == "critical_without_evidence":
        return build_card(incident(severity=Severity.CRITICAL, runbook=""), (), None, CONSOLE)
    if name == "huge":
        huge = incident(title="Disk full on " + "storage-node-" * 40, service="s" * 300)
        lines = tuple(Evidence(f"ev-{i}", NOW, "x" * 5000 + f" line {i}") for i in range(5))
        long_rca = replace(RCA, summary="y" * 5000)
        return build_card(huge, lines, long_rca, CONSOLE, search_link=SEARCH + "z" * 4000)
    raise AssertionError(name)


CARDS = [
    "open",
    "acknowledged_with_rca",
    "paged",
    "suppressed",
    "resolved",
    "critical_without_evidence",
    "huge",
]


def check_golden(name: str, rendered: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == rendered, f"{path.name} differs from the rendering"


@pytest.mark.parametrize("name", CARDS)
def test_card_matches_golden_and_slack_accepts_it(name: str) -> None:
    rendered = render_card(card_for(name), CONSOLE)
    check_golden(f"card_{name}", rendered)
    assert block_problems(rendered["blocks"]) == []
    assert rendered["text"]


@pytest.mark.parametrize(
    ("name", "buttons"),
    [
        ("open", ["acknowledge", "suppress", "resolve", "view"]),
        (
            "acknowledged_with_rca",
            ["unacknowledge", "suppress", "resolve", "escalate", "reanalyse", "view"],
        ),
        ("paged", ["acknowledge", "suppress", "resolve", "reanalyse", "view"]),
        ("suppressed", ["unsuppress", "view"]),
        ("resolved", ["reopen", "view"]),
    ],
)
def test_buttons_follow_the_cards_actions(name: str, buttons: list[str]) -> None:
    card = card_for(name)
    actions = render_card(card, CONSOLE)["blocks"][-1]
    assert [e["action_id"] for e in actions["elements"]] == buttons
    view = actions["elements"][-1]
    assert view["url"] == f"{CONSOLE}/incidents/31" and "value" not in view
    for element in actions["elements"][:-1]:
        assert element["value"] == button_value(card)
        assert element["value"].startswith("31:")


def test_button_styles_come_from_the_card() -> None:
    elements = render_card(card_for("open"), CONSOLE)["blocks"][-1]["elements"]
    assert [e.get("style") for e in elements] == ["primary", None, "danger", None]


def test_huge_card_is_clipped_visibly_within_slacks_limits() -> None:
    rendered = render_card(card_for("huge"), CONSOLE)
    blocks = rendered["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) == MAX_HEADER and blocks[0]["text"]["text"].endswith("…")
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(t) <= MAX_SECTION for t in texts)
    evidence = next(t for t in texts if t.startswith("*Evidence*"))
    assert evidence.endswith(f"<{CONSOLE}/incidents/31|{MORE}>")
    assert all(len(e["text"]["text"]) <= 75 for e in blocks[-1]["elements"])


def test_text_from_logs_cannot_inject_slack_markup() -> None:
    card = card_for("open")
    hostile = replace(card, title="<!channel> ping", service="<https://evil.example|click>")
    rendered = render_card(hostile, CONSOLE)
    fields = json.dumps(rendered["blocks"][1])
    assert "<https://evil" not in fields and "&lt;https://evil.example|click&gt;" in fields
    assert "<!channel>" not in rendered["text"]
    evidence = render_card(card, CONSOLE)["blocks"][3]["text"]["text"]
    assert "&lt;in use&gt; &amp; 12" in evidence


def test_people_are_shown_as_mentions() -> None:
    status = render_card(card_for("acknowledged_with_rca"), CONSOLE)["blocks"][1]["fields"][2]
    assert status["text"].startswith("*Status*\nAcknowledged by <@U0RESP001> at 2026-11-22 10:17")


def test_double_click_carries_the_same_value_and_a_new_card_a_new_one() -> None:
    open_ = incident()
    first = build_card(open_, EVIDENCE, None, CONSOLE)
    again = build_card(replace(open_, hit_count=99), EVIDENCE, RCA, CONSOLE)
    # every change bumps the incident's version (the store does it with each transition)
    acked_incident = replace(act(open_, CommandKind.ACKNOWLEDGE), version=open_.version + 1)
    acked = build_card(acked_incident, EVIDENCE, None, CONSOLE)
    back_open = replace(act(acked_incident, CommandKind.UNACKNOWLEDGE), version=open_.version + 2)
    reopened = build_card(back_open, EVIDENCE, None, CONSOLE)
    assert button_value(first) == button_value(again)  # counts and RCA do not change it
    assert len({button_value(first), button_value(acked), button_value(reopened)}) == 3


def test_reply_renders_mentions_and_escapes() -> None:
    rendered = render_reply("suppressed by slack:U0RESP001 until 12:00 UTC: deploy <v2> & db")
    check_golden("reply", rendered)
    assert rendered["text"].startswith("suppressed by <@U0RESP001>")


def lines(n: int, severity: str = "high") -> list[DigestLine]:
    return [
        DigestLine(i, f"INC-{i}", severity, f"5xx burst on svc-{i}", f"{CONSOLE}/incidents/{i}")
        for i in range(1, n + 1)
    ]


def test_digest_groups_by_severity_most_severe_first() -> None:
    mixed = [*lines(2, "low"), *lines(3, "high")[2:], *lines(2, "medium")[1:]]
    rendered = render_digest(mixed, CONSOLE)
    check_golden("digest", rendered)
    sections = [b["text"]["text"] for b in rendered["blocks"] if b["type"] == "section"]
    assert [s.split("*")[1] for s in sections] == ["High", "Medium", "Low"]
    assert rendered["text"] == ":ocean: Storm: 4 incidents waiting for a card"


def test_a_huge_digest_stays_within_slacks_limits() -> None:
    rendered = render_digest(lines(2000), CONSOLE)
    assert block_problems(rendered["blocks"]) == []
    assert len(rendered["blocks"]) == MAX_BLOCKS
    assert MORE in rendered["blocks"][-1]["elements"][0]["text"]


def test_empty_digest_says_the_storm_is_over() -> None:
    rendered = render_digest([], CONSOLE)
    check_golden("digest_closed", rendered)
    assert "Storm over" in rendered["text"]


def test_every_action_kind_is_rendered() -> None:
    kinds = {
        e["action_id"]
        for n in CARDS
        for e in render_card(card_for(n), CONSOLE)["blocks"][-1]["elements"]
    }
    remediation = {ActionKind.AUTO_RESOLVE, ActionKind.APPROVE_RUN, ActionKind.CANCEL_RUN}
    # the remediation buttons: tests/unit/test_remediation_render.py
    assert kinds == {k.value for k in ActionKind} - remediation


def test_a_card_muted_by_a_maintenance_window_names_it() -> None:
    card = build_card(incident(), (), None, CONSOLE, muted_by="maintenance:sunday-patching")
    text = json.dumps(render_card(card, CONSOLE))
    assert "Muted by maintenance window 'sunday-patching'" in text
