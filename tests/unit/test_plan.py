"""Planning a playbook for an incident: labels into parameters, types, patterns, the
fingerprint an approval binds to, and which rollback steps undo what."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import PermanentError
from integrations.http.executor import HttpExecutor
from playbooks.plan import StoredPlan, parameters, plan_playbook
from playbooks.spec import Playbook

EXECUTORS = {"http": HttpExecutor(["https://ops.example.com/"])}
LABELS = {"service": "checkout", "host": "web-1", "rule": "web-5xx-burst", "replicas": "3"}


def book(**changes: Any) -> Playbook:
    data: dict[str, Any] = {
        "id": "drain",
        "title": "Drain a host",
        "category": "application",
        "matches": {"rules": ["web-5xx-burst"]},
        "parameters": {
            "host": {"default": "{host}", "pattern": "[a-z0-9-]+"},
            "replicas": {"type": "integer", "default": "{replicas}"},
            "force": {"type": "boolean", "default": "yes"},
            "zones": {"type": "list", "default": "a, b"},
            "note": {"required": False},
        },
        "target": "host:{host}",
        "steps": [
            {
                "name": "drain",
                "executor": "http",
                "action": "request",
                "args": {"url": "https://ops.example.com/drain/{host}", "method": "POST"},
                "undo": "undrain",
            },
            {
                "name": "restart",
                "executor": "http",
                "action": "request",
                "args": {"url": "https://ops.example.com/restart/{service}", "method": "POST"},
                "reversible": True,
            },
        ],
        "rollback": [
            {
                "name": "undrain",
                "executor": "http",
                "action": "request",
                "args": {"url": "https://ops.example.com/undrain/{host}", "method": "POST"},
            },
            {
                "name": "tell",
                "executor": "http",
                "action": "request",
                "args": {"url": "https://ops.example.com/tell", "method": "POST"},
            },
        ],
    }
    data.update(changes)
    return Playbook.model_validate(data)


def test_parameters_take_labels_and_their_declared_types() -> None:
    values = parameters(book(), LABELS)
    assert values == {"host": "web-1", "replicas": 3, "force": True, "zones": ("a", "b")}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({**LABELS, "host": "web-1; rm -rf /"}, "does not match its pattern"),
        ({**LABELS, "replicas": "three"}, "'three' is not an integer"),
        ({"service": "checkout", "replicas": "3"}, "the incident has no label 'host'"),
        ({**LABELS, "host": "web-1\nreboot"}, "the incident has no label 'host'"),
    ],
)
def test_a_bad_or_missing_value_is_refused_with_a_sentence(
    labels: dict[str, str], message: str
) -> None:
    with pytest.raises(PermanentError, match=message):
        parameters(book(), labels)


async def test_a_plan_fills_every_step_and_its_fingerprint_follows_what_would_run() -> None:
    plan = await plan_playbook(book(), LABELS, EXECUTORS)
    assert plan.target == "host:web-1"
    urls = [s.plan.param("url") for s in plan.steps]
    assert urls == [
        "https://ops.example.com/drain/web-1",
        "https://ops.example.com/restart/checkout",
    ]
    assert [s.reversible for s in plan.steps] == [True, True]
    assert len(plan.fingerprint) == 64
    again = await plan_playbook(book(), LABELS, EXECUTORS)
    assert again.fingerprint == plan.fingerprint
    other = await plan_playbook(book(), {**LABELS, "host": "web-2"}, EXECUTORS)
    assert other.fingerprint != plan.fingerprint
    longer = book(steps=[{**book().steps[0].model_dump(), "timeout": "9m"}, book().steps[1]])
    assert (await plan_playbook(longer, LABELS, EXECUTORS)).fingerprint != plan.fingerprint


async def test_a_step_whose_executor_is_missing_or_refuses_stops_the_plan() -> None:
    with pytest.raises(PermanentError, match="needs the 'http' executor, which is not set up"):
        await plan_playbook(book(), LABELS, {})
    off_list = book(
        steps=[
            {
                "name": "x",
                "executor": "http",
                "action": "request",
                "args": {"url": "https://elsewhere.example.com/"},
            }
        ],
        rollback=[],
    )
    with pytest.raises(PermanentError, match="allowlist"):
        await plan_playbook(off_list, LABELS, EXECUTORS)


async def test_the_stored_plan_runs_what_was_planned_and_undoes_in_reverse() -> None:
    plan = await plan_playbook(book(), LABELS, EXECUTORS)
    stored = StoredPlan.parse(plan.to_json())
    assert [s.step.plan for s in stored.steps] == [s.plan for s in plan.steps]
    assert stored.rollback_for([]) == []
    assert [s.step.name for s in stored.rollback_for([0])] == ["undrain", "tell"]
    # restart names no undo: only the whole-run rollback step and drain's undo run
    assert [s.step.name for s in stored.rollback_for([0, 1])] == ["undrain", "tell"]
