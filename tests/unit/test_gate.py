"""The gate: every refusal, approval and go, each check recorded with its sentence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.store.runtime_config import CategoryPolicy, KillSwitch
from playbooks.gate import GateFacts, decide
from playbooks.model import Confidence, Decision, RunMode
from playbooks.spec import Playbook

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
ALL_COMMON = [
    "kill_switch",
    "role",
    "category",
    "allowed",
    "breaker",
    "concurrency",
    "target_busy",
    "cooldown",
]


def playbook(**changes: Any) -> Playbook:
    data: dict[str, Any] = {
        "id": "restart-web",
        "title": "Restart the web service",
        "category": "application",
        "matches": {"rules": ["web-5xx"]},
        "steps": [
            {
                "name": "restart",
                "executor": "ecs",
                "action": "force-new-deployment",
                "reversible": True,
            }
        ],
        "cooldown": "30m",
    }
    data.update(changes)
    return Playbook.model_validate(data)


def facts(**changes: Any) -> GateFacts:
    base = GateFacts(
        playbook=playbook(),
        mode=RunMode.MANUAL,
        actor="slack:ann",
        role_ok=True,
        requested_by="slack:ann",
        approver="",
        kill=KillSwitch(False),
        policy=CategoryPolicy("application"),
        confidence=Confidence(0.95, ("rule confidence 0.95",)),
        rule_auto=False,
        live_runs=0,
        max_concurrent=10,
        target_busy=False,
        last_finished_on_target=None,
        breaker_reason="",
        now=NOW,
        embedded=False,
    )
    return replace(base, **changes)


def test_a_routine_press_runs_and_records_every_check() -> None:
    verdict = decide(facts())
    assert verdict.decision is Decision.RUN and not verdict.failed
    codes = [c.code for c in verdict.checks]
    assert codes == [*ALL_COMMON, "confidence", "reversible", "risk", "approval"]
    assert all(c.text for c in verdict.checks)


def test_the_kill_switch_refuses_first_and_says_who_and_why() -> None:
    kill = KillSwitch(True, "ann", "deploy freeze", NOW.replace(hour=12, minute=4))
    verdict = decide(facts(kill=kill, role_ok=False))
    assert verdict.decision is Decision.REFUSED
    assert verdict.reason == "kill switch is on since 12:04 UTC by ann: deploy freeze"
    # the other checks are still recorded: the role refusal is there too
    assert [c.code for c in verdict.failed] == ["kill_switch", "role"]


@pytest.mark.parametrize(
    ("changes", "code", "text"),
    [
        ({"role_ok": False}, "role", "slack:ann needs the responder role to run a playbook"),
        (
            {"policy": CategoryPolicy("application", enabled=False)},
            "category",
            "remediation is disabled for the application category",
        ),
        (
            {"policy": CategoryPolicy("application", allowed_playbooks=("scale-out",))},
            "allowed",
            "playbook restart-web is not allowed in the application category (allowed: scale-out)",
        ),
        (
            {"playbook": playbook(enabled=False)},
            "allowed",
            "playbook restart-web is disabled in its file",
        ),
        (
            {"breaker_reason": "3 failed runs within 1h"},
            "breaker",
            "playbook restart-web is disabled by its circuit breaker: 3 failed runs within 1h",
        ),
        (
            {"playbook": playbook(embedded_only=True)},
            "embedded_only",
            "playbook restart-web runs only on the embedded default, not here",
        ),
        (
            {"live_runs": 10},
            "concurrency",
            "10 remediations already running (limit 10)",
        ),
        (
            {"target_busy": True},
            "target_busy",
            "another remediation is already running on this target",
        ),
        (
            {"last_finished_on_target": NOW - timedelta(minutes=10)},
            "cooldown",
            "this target is cooling down until 12:50 UTC (cooldown 30m after the run that "
            "finished at 12:20 UTC)",
        ),
    ],
)
def test_each_refusal_names_its_reason(changes: dict[str, Any], code: str, text: str) -> None:
    verdict = decide(facts(**changes))
    assert verdict.decision is Decision.REFUSED
    assert [(c.code, c.text) for c in verdict.failed] == [(code, text)]
    assert verdict.reason == text


def test_limits_that_are_not_reached_pass() -> None:
    verdict = decide(
        facts(live_runs=9, last_finished_on_target=NOW - timedelta(minutes=30), embedded=True)
    )
    assert verdict.decision is Decision.RUN


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (
            {"confidence": Confidence(0.72, ())},
            "confidence 0.72 is below the application threshold 0.90",
        ),
        ({"playbook": playbook(risk="high")}, "risk is high"),
        (
            {
                "playbook": playbook(
                    steps=[{"name": "wipe", "executor": "ssm", "action": "run-command"}]
                )
            },
            "step 'wipe' cannot be undone",
        ),
    ],
)
def test_a_press_below_the_bar_waits_for_a_second_responder(
    changes: dict[str, Any], why: str
) -> None:
    waiting = decide(facts(**changes))
    assert waiting.decision is Decision.NEEDS_APPROVAL and not waiting.failed
    assert waiting.reason == f"needs approval by a second responder (not slack:ann): {why}"
    approved = decide(facts(**changes, actor="slack:bob", approver="slack:bob"))
    assert approved.decision is Decision.RUN and approved.reason == "approved by slack:bob"
    own = decide(facts(**changes, approver="slack:ann"))
    assert own.decision is Decision.REFUSED
    assert own.reason == "you cannot approve your own run"


def test_approval_mode_waits_even_when_the_conditions_cleared() -> None:
    verdict = decide(facts(mode=RunMode.APPROVAL))
    assert verdict.decision is Decision.NEEDS_APPROVAL
    assert "the run waits for an approval" in verdict.reason


def auto(**changes: Any) -> GateFacts:
    base = {
        "mode": RunMode.AUTO,
        "actor": "bot",
        "requested_by": "rule:web-5xx",
        "rule_auto": True,
        "policy": CategoryPolicy("application", auto=True),
    }
    return facts(**{**base, **changes})


def test_automatic_runs_need_every_condition_and_never_ask_for_approval() -> None:
    ok = decide(auto())
    assert ok.decision is Decision.RUN
    assert [c.code for c in ok.checks][-4:] == ["auto", "confidence", "reversible", "risk"]
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"rule_auto": False},
            "automatic runs need auto: true on the rule or on playbook restart-web",
        ),
        (
            {"policy": CategoryPolicy("application")},
            "automatic remediation is off for the application category",
        ),
        (
            {"confidence": Confidence(0.89, ())},
            "confidence 0.89 is below the application threshold 0.90: no automatic run",
        ),
        ({"playbook": playbook(risk="high")}, "risk is high: automatic runs need low risk"),
        (
            {
                "playbook": playbook(
                    steps=[{"name": "wipe", "executor": "ssm", "action": "run-command"}]
                )
            },
            "step 'wipe' cannot be undone: it never runs automatically",
        ),
    ]
    for changes, text in cases:
        verdict = decide(auto(**changes))
        assert verdict.decision is Decision.REFUSED, text
        assert verdict.reason == text
    # the playbook's own auto: true is enough when the rule does not say so
    assert decide(auto(rule_auto=False, playbook=playbook(auto=True))).decision is Decision.RUN


def test_a_custom_threshold_is_the_bar() -> None:
    strict = CategoryPolicy("application", threshold=0.97)
    verdict = decide(facts(policy=strict))
    assert verdict.decision is Decision.NEEDS_APPROVAL
    assert "confidence 0.95 is below the application threshold 0.97" in verdict.reason
