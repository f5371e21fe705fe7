"""A storm through BedrockRcaEngine and the real boto3 client against the Bedrock fake: one
analysis per rule and log templates, each incident citing its own evidence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.hits import Evidence
from bot.domain.rca import RcaStatus
from bot.ports import RcaContext
from bot.redaction import Redactor
from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings
from integrations.heuristic import HeuristicRcaEngine
from tests.fakes.bedrock import FakeBedrock, aws_test_env, citing, evidence, incident

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
HOSTS = ("alder", "birch", "cedar", "delta", "ember", "fjord", "grove", "heath")
CAUSES = (
    'level=error msg="connection pool exhausted" pool=orders waiting={n}',
    'level=error msg="disk full" mount=/var/lib/data free_mb={n}',
    'level=error msg="certificate expired" peer=payments days={n}',
    'level=error msg="out of memory: killed process" pid={n}',
)


def storm_evidence(rule: int, member: int) -> list[Evidence]:
    host = f"{HOSTS[member % len(HOSTS)]}{'x' * (member // len(HOSTS))}"
    lines = [
        f"2026-11-22T10:00:{s:02d}Z host={host} service=shop-{rule} "
        + CAUSES[rule].format(n=member * 7 + s)
        for s in range(3)
    ]
    lines.append(f"2026-11-22T10:00:09Z host={host} service=shop-{rule} status=503 path=/api/x")
    return evidence(lines)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBedrock]:
    aws_test_env(monkeypatch, tmp_path)
    with FakeBedrock(quota=40, window=60.0) as fake:  # Bedrock's RPM quota, answered 429
        monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fake.url)
        yield fake


@pytest.fixture
def engine(fake: FakeBedrock) -> Iterator[BedrockRcaEngine]:
    made = BedrockRcaEngine(
        load_bedrock_settings(model_id=MODEL, rpm=40),
        HeuristicRcaEngine(),
        Redactor("balanced"),
    )
    yield made
    made.close()


async def test_a_storm_is_analysed_once_per_rule_and_templates(
    fake: FakeBedrock, engine: BedrockRcaEngine
) -> None:
    """200 incidents of 4 rules, analysed four at a time as the enricher does: 4 Bedrock calls,
    every incident's report cites its own lines and names the incident that was analysed."""
    cases = [(n, n % 4, storm_evidence(n % 4, n // 4)) for n in range(1, 201)]
    workers = asyncio.Semaphore(4)

    async def one(number: int, rule: int, lines: list[Evidence]):  # type: ignore[no-untyped-def]
        async with workers:
            found = incident(
                number,
                rule=f"rule-{rule}",
                service=f"shop-{rule}",
                host=lines[0].text.split()[1][5:],
            )
            return await engine.explain(found, lines, RcaContext())

    started = time.monotonic()
    reports = await asyncio.gather(*(one(*case) for case in cases))
    took = time.monotonic() - started

    assert len(fake.requests) == 4 and fake.statuses() == [200] * 4
    assert engine.stats.shared == 196 and took < 30
    leaders: dict[int, int] = {}
    for (number, rule, lines), report in zip(cases, reports, strict=True):
        assert report.status is RcaStatus.OK and report.engine == f"bedrock:{MODEL}"
        own = {e.id for e in lines}
        cited = {i for cause in report.causes for i in cause.evidence_ids}
        assert cited and cited <= own, f"INC-{number} cites lines that are not its own"
        leader = leaders.setdefault(rule, number)
        if number != leader:
            assert f"(same cause as INC-{leader}" in report.summary
            assert engine.last_meta[number]["shared_with"] == f"INC-{leader}"
    last = reports[-1].summary
    assert last.endswith(f"(same cause as INC-{leaders[0]} and 48 others)")


async def test_an_incident_whose_evidence_differs_gets_its_own_analysis(
    fake: FakeBedrock, engine: BedrockRcaEngine
) -> None:
    first = storm_evidence(0, 0)
    status = next(e.id for e in first if "status=503" in e.text)
    fake.script(citing(status))
    await engine.explain(incident(1, rule="rule-0", host="alder"), first, RcaContext())
    # same rule, but the status line the answer rests on is not in this incident's evidence
    partial = [e for e in storm_evidence(0, 1) if "status=503" not in e.text]
    report = await engine.explain(incident(2, rule="rule-0", host="birch"), partial, RcaContext())
    assert len(fake.requests) == 2 and engine.stats.shared == 0
    assert report.status is RcaStatus.OK and "same cause" not in report.summary
    assert {i for c in report.causes for i in c.evidence_ids} <= {e.id for e in partial}
    # another rule with the very same lines is another storm
    other = await engine.explain(incident(3, rule="rule-9", host="cedar"), first, RcaContext())
    assert len(fake.requests) == 3 and "same cause" not in other.summary
