"""Which playbooks fit an incident, and in which order."""

from __future__ import annotations

from typing import Any

from bot.domain.hits import Category, Severity
from detectors.model import Rule
from playbooks.registry import Registry, label_matches
from playbooks.spec import Playbook


def playbook(id: str, **matches: Any) -> Playbook:
    extra = {k: matches.pop(k) for k in ("enabled", "embedded_only") if k in matches}
    return Playbook.model_validate(
        {
            "id": id,
            "title": id,
            "category": "infrastructure",
            "matches": matches,
            "steps": [
                {
                    "name": "s",
                    "executor": "ssm",
                    "action": "run-command",
                    "args": {"document": "AWS-RunShellScript"},
                }
            ],
            **extra,
        }
    )


def rule(id: str, suggested: str | None = None, category: str = "infrastructure") -> Rule:
    return Rule(
        id=id,
        title=id,
        query="index=x",
        type="threshold",
        severity=Severity.HIGH,
        category=Category(category),
        suggested_playbook=suggested,
    )


LABELS = {"host": "db-1", "mount": "/var", "rule": "disk-filling"}


def test_suggested_then_exact_rule_then_label_and_category() -> None:
    registry = Registry(
        [
            playbook("by-category", categories=["infrastructure"]),
            playbook("by-label", labels={"mount": "~/var.*"}),
            playbook("by-rule", rules=["disk-filling"]),
            playbook("suggested", rules=["other-rule"]),
            playbook("elsewhere", rules=["high-cpu"]),
        ],
        [rule("disk-filling", suggested="suggested")],
    )
    found = registry.matching("disk-filling", "infrastructure", LABELS)
    assert [p.id for p in found] == ["suggested", "by-rule", "by-category", "by-label"]


def test_every_criterion_given_must_hold() -> None:
    registry = Registry(
        [
            playbook("rule-and-label", rules=["disk-filling"], labels={"host": "db-2"}),
            playbook("category-and-label", categories=["database"], labels={"host": "db-1"}),
            playbook("both-hold", rules=["disk-filling"], labels={"host": "~db-[0-9]+"}),
        ]
    )
    found = registry.matching("disk-filling", "infrastructure", LABELS)
    assert [p.id for p in found] == ["both-hold"]


def test_disabled_playbooks_are_left_out() -> None:
    registry = Registry(
        [playbook("off", rules=["disk-filling"], enabled=False), playbook("on", rules=["x"])],
        [rule("disk-filling", suggested="off")],
    )
    assert registry.matching("disk-filling", "infrastructure", LABELS) == []
    assert registry.get("off") is None
    assert registry.ids() == ("on",)
    assert [p.id for p in registry.disabled()] == ["off"]


def test_on_the_embedded_default_its_own_playbooks_come_first() -> None:
    playbooks = [
        playbook("free-disk-space", rules=["disk-filling"]),
        playbook("demo-free-disk-space", rules=["disk-filling"], embedded_only=True),
    ]
    rules = [rule("disk-filling", suggested="free-disk-space")]
    embedded = Registry(playbooks, rules, embedded=True)
    assert [p.id for p in embedded.matching("disk-filling", "infrastructure", LABELS)] == [
        "demo-free-disk-space",
        "free-disk-space",
    ]
    assert embedded.suggestions() == {"disk-filling": "demo-free-disk-space"}
    other = Registry(playbooks, rules, embedded=False)
    assert [p.id for p in other.matching("disk-filling", "infrastructure", LABELS)] == [
        "free-disk-space"
    ]
    assert other.get("demo-free-disk-space") is None
    assert other.suggestions() == {"disk-filling": "free-disk-space"}


def test_suggestions_use_the_labels_a_rule_fixes() -> None:
    registry = Registry(
        [
            playbook("for-database", categories=["database"]),
            playbook("for-one-rule", labels={"rule": "slow-queries"}),
        ],
        [rule("slow-queries", category="database"), rule("replica-lag", category="database")],
    )
    assert registry.suggestions() == {"slow-queries": "for-database", "replica-lag": "for-database"}
    assert [
        p.id for p in registry.matching("slow-queries", "database", {"rule": "slow-queries"})
    ] == [
        "for-database",
        "for-one-rule",
    ]


def test_label_values_are_exact_or_full_regex() -> None:
    assert label_matches("db-1", "db-1")
    assert not label_matches("db-1", "db-10")
    assert label_matches("~db-[0-9]+", "db-10")
    assert not label_matches("~db", "db-10")
    assert not label_matches("db-1", None)
