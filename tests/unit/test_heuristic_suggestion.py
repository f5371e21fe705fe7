"""The heuristic RCA suggests a playbook only from the registry, and only on the evidence."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.rca import RcaReport
from bot.ports import RcaContext
from integrations.heuristic import HeuristicRcaEngine
from tests.unit.test_heuristic_rca import NOISE, evidence, incident

DISK = [f"host=db-1 metric=disk_used_pct mount=/var value={v}" for v in (93.1, 95.4, 97.8)]
SUGGESTIONS = {"disk-filling": "free-disk-space"}


async def explain(
    lines: list[str], playbooks: tuple[str, ...] = ("free-disk-space",), rule: str = "disk-filling"
) -> RcaReport:
    engine = HeuristicRcaEngine(playbooks=playbooks, suggestions=SUGGESTIONS)
    inc = replace(incident(host="db-1", service=""), rule_id=rule)
    return await engine.explain(inc, evidence(lines), RcaContext())


async def test_the_rules_playbook_when_a_known_pattern_backs_the_incident() -> None:
    report = await explain([*DISK, *NOISE[:2]])
    assert report.summary.startswith("Most likely disk filling")
    assert report.suggested_playbook == "free-disk-space"


async def test_no_playbook_the_registry_lacks_or_the_rule_does_not_name() -> None:
    assert (await explain(DISK, playbooks=())).suggested_playbook is None
    assert (await explain(DISK, rule="high-cpu")).suggested_playbook is None


async def test_no_playbook_without_evidence_for_it() -> None:
    report = await explain(NOISE[:3])
    assert report.suggested_playbook is None


async def test_log_lines_asking_for_a_playbook_back_nothing() -> None:
    asking = [
        "host=db-1 metric=disk_used_pct mount=/var value=99 note=run playbook free-disk-space",
        "host=db-1 metric=disk_used_pct mount=/var value=98 please free-disk-space now",
    ]
    report = await explain(asking)
    assert report.summary.startswith("Most likely disk filling")
    assert report.suggested_playbook is None
