"""Remediation on cards and in plans, as Slack (Block Kit) and Teams (Adaptive Card) show them.

Pinned by golden files (``UPDATE_GOLDEN=1`` rewrites them; review the diff): the Auto-resolve
button with the confidence line, a run waiting for approval with Approve and Cancel, the button
given up to its reason when the kill switch is on, and the dry-run plan.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.domain.card import ActionKind, Card, CardAction, build_card
from bot.domain.hits import Severity
from bot.ports import ExecutionPlan
from integrations.slack.payloads import ButtonValue, ConfirmValue, PlanMetadata
from integrations.slack.plans import CONFIRM_ACTION, confirm_blocks, plan_view
from integrations.slack.render import render_card
from integrations.teams.plans import BACK_VERB, CONFIRM_VERB, confirm_card
from integrations.teams.render import render_card as teams_card
from playbooks.model import (
    Check,
    Confidence,
    Decision,
    PlannedStep,
    RunPreview,
    Verdict,
)
from tests.builders import incident
from tests.fakes.slack import block_problems, view_problems

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONSOLE = "https://bot.example.org"
NOW = datetime(2026, 11, 22, 10, 17, 42, tzinfo=UTC)
CONFIDENCE_LINE = (
    "Confidence 93% (rule 0.85; 42 hits in 3 alerts +0.05; RCA citations valid +0.03) · "
    "restart-web: allowed"
)


def base() -> Card:
    return build_card(incident(severity=Severity.HIGH, runbook=""), (), None, CONSOLE)


def with_actions(card: Card, *extra: CardAction, line: str = "", run_id: int = 0) -> Card:
    view = card.actions[-1]
    return replace(
        card, actions=(*card.actions[:-1], *extra, view), remediation_line=line, run_id=run_id
    )


CARDS: dict[str, Card] = {
    "auto_resolve": with_actions(
        base(), CardAction(ActionKind.AUTO_RESOLVE, "Auto-resolve", "primary"), line=CONFIDENCE_LINE
    ),
    "awaiting_approval": with_actions(
        base(),
        CardAction(ActionKind.APPROVE_RUN, "Approve", "primary"),
        CardAction(ActionKind.CANCEL_RUN, "Cancel run", "danger"),
        line="RUN-7 restart-web: waiting for a second responder to approve "
        "(requested by slack:U0RESP001)",
        run_id=7,
    ),
    "kill_switch": with_actions(
        base(),
        CardAction(
            ActionKind.AUTO_RESOLVE,
            "Auto-resolve",
            "primary",
            refused="kill switch on since 12:04 UTC by console:ann: deploy freeze",
        ),
        line="kill switch on: deploy freeze",
    ),
}


def check_golden(path: Path, content: dict[str, Any]) -> None:
    text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == content, f"{path.name} differs from the rendering"


def slack_buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for e in message["blocks"][-1]["elements"]}


def teams_buttons(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a.get("verb", a["title"]): a for a in content.get("actions", [])}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_remediation_cards_match_golden_and_slack_accepts_them(name: str) -> None:
    slack = render_card(CARDS[name], CONSOLE)
    check_golden(FIXTURES / "slack" / "golden" / f"card_{name}.json", slack)
    assert block_problems(slack["blocks"]) == []
    check_golden(FIXTURES / "teams" / "cards" / f"card_{name}.json", teams_card(CARDS[name]))


def test_the_auto_resolve_button_and_its_confidence_line() -> None:
    slack = render_card(CARDS["auto_resolve"], CONSOLE)
    assert "Confidence 93%" in json.dumps(slack["blocks"])
    button = slack_buttons(slack)["auto_resolve"]
    assert button["text"]["text"] == "Auto-resolve"
    assert ButtonValue.parse(button["value"]) == ButtonValue(CARDS["auto_resolve"].incident_id, "1")
    teams = teams_buttons(teams_card(CARDS["auto_resolve"]))
    assert teams["auto_resolve"]["title"] == "Auto-resolve"
    assert "isEnabled" not in teams["auto_resolve"]


def test_approve_and_cancel_name_the_run() -> None:
    card = CARDS["awaiting_approval"]
    slack = slack_buttons(render_card(card, CONSOLE))
    for kind in ("approve_run", "cancel_run"):
        assert ButtonValue.parse(slack[kind]["value"]) == ButtonValue(card.incident_id, "1", 7)
    teams = teams_buttons(teams_card(card))
    assert teams["approve_run"]["data"]["run_id"] == 7
    assert teams["cancel_run"]["data"]["run_id"] == 7
    assert "waiting for a second responder" in json.dumps(teams_card(card))


def test_with_the_kill_switch_on_the_button_says_why_instead() -> None:
    slack = render_card(CARDS["kill_switch"], CONSOLE)
    assert "auto_resolve" not in slack_buttons(slack)  # Slack cannot grey a button out
    assert any(
        "Auto-resolve unavailable: kill switch on since 12:04 UTC by console:ann: deploy freeze"
        in json.dumps(b)
        for b in slack["blocks"]
    )
    teams = teams_card(CARDS["kill_switch"])
    assert teams_buttons(teams)["auto_resolve"]["isEnabled"] is False
    assert "Auto-resolve unavailable: kill switch on" in json.dumps(teams)


def preview(decision: Decision = Decision.RUN) -> RunPreview:
    plan = ExecutionPlan(
        "ecs",
        "restart_service",
        "ecs:prod/web",
        "force a new deployment of prod/web",
        (("cluster", "prod"), ("service", "web")),
        300.0,
    )
    checks = [
        Check("kill_switch", True, "kill switch off"),
        Check("confidence", True, "0.93 ≥ 0.90"),
    ]
    if decision is Decision.NEEDS_APPROVAL:
        checks.append(Check("approval", True, "risk high: a second responder must approve"))
    if decision is Decision.REFUSED:
        checks.append(Check("cooldown", False, "ecs:prod/web ran 3m ago; cooldown 15m"))
    return RunPreview(
        incident_id=3,
        human_id="INC-3",
        playbook_id="restart-web",
        playbook_title="Restart the web service",
        category="application",
        risk="high" if decision is Decision.NEEDS_APPROVAL else "low",
        target="ecs:prod/web",
        steps=(PlannedStep("step", 0, "restart", True, plan),),
        rollback=(),
        confidence=Confidence(0.93, ("rule confidence 0.85", "42 hits in 3 alerts +0.05")),
        verdict=Verdict(decision, tuple(checks)),
        fingerprint="ab" * 32,
        verify_wait_s=120.0,
        alternatives=("drain-host",),
    )


def test_the_plan_dialog_shows_steps_targets_parameters_risk_confidence_and_verdict() -> None:
    meta = PlanMetadata(incident_id=3, channel="C1", message_ts="1.2", key="k")
    view = plan_view(meta, preview())
    check_golden(FIXTURES / "slack" / "golden" / "plan_modal.json", view)
    assert view_problems(view) == []
    text = json.dumps(view["blocks"])
    for shown in (
        "restart-web",
        "ecs:prod/web",
        "service=web",
        "risk *low*",
        "Confidence 93%",
        "rule confidence 0.85",
        "The gate allows it",
        "120s",
        "drain-host",
    ):
        assert shown in text, shown
    assert view["submit"]["text"] == "Confirm"
    carried = PlanMetadata.model_validate_json(view["private_metadata"])
    assert (carried.fingerprint, carried.playbook_id) == ("ab" * 32, "restart-web")


def test_a_plan_needing_approval_offers_run_with_approval_and_a_refused_one_no_submit() -> None:
    meta = PlanMetadata(incident_id=3, key="k")
    assert (
        plan_view(meta, preview(Decision.NEEDS_APPROVAL))["submit"]["text"] == "Run with approval"
    )
    refused = plan_view(meta, preview(Decision.REFUSED))
    assert "submit" not in refused
    assert "cooldown 15m" in json.dumps(refused["blocks"])
    assert not any(b["type"] == "actions" for b in confirm_blocks(preview(Decision.REFUSED)))


def test_the_slash_plan_carries_a_confirm_button_bound_to_the_fingerprint() -> None:
    blocks = confirm_blocks(preview())
    button = blocks[-1]["elements"][0]
    assert button["action_id"] == CONFIRM_ACTION
    assert ConfirmValue.parse(button["value"]) == ConfirmValue(3, "ab" * 32, "restart-web")
    assert block_problems(blocks) == []


def test_the_teams_confirmation_card() -> None:
    card = confirm_card(preview())
    check_golden(FIXTURES / "teams" / "cards" / "plan_confirm.json", card)
    verbs = teams_buttons(card)
    assert verbs[CONFIRM_VERB]["data"] == {
        "incident_id": 3,
        "fingerprint": "ab" * 32,
        "playbook_id": "restart-web",
    }
    assert BACK_VERB in verbs
    assert CONFIRM_VERB not in teams_buttons(confirm_card(preview(Decision.REFUSED)))
