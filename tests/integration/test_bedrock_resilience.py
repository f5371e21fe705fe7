"""BedrockRcaEngine when Bedrock is busy, slow, refusing or gone: the analysis still arrives.

Real boto3 over HTTP against the loopback fake; the engine never raises to its caller.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.domain.hits import Evidence
from bot.domain.incident import Incident
from bot.domain.rca import RcaReport, RcaStatus
from bot.ports import RcaContext
from bot.redaction import Redactor
from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings
from integrations.heuristic import HeuristicRcaEngine
from tests.fakes.bedrock import (
    CHECKOUT,
    FakeBedrock,
    aws_test_env,
    error,
    evidence,
    incident,
    slow,
    throttle,
)

MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0"
FALLBACK = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
LINES = evidence(CHECKOUT)
MakeEngine = Callable[..., BedrockRcaEngine]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBedrock]:
    aws_test_env(monkeypatch, tmp_path)
    with FakeBedrock() as fake:
        monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fake.url)
        yield fake


@pytest.fixture
def make_engine(fake: FakeBedrock) -> Iterator[MakeEngine]:
    made: list[BedrockRcaEngine] = []

    def make(fallback: Any = None, **settings: Any) -> BedrockRcaEngine:
        values = {"model_id": MODEL, "rpm": 6000, **settings}
        engine = BedrockRcaEngine(
            load_bedrock_settings(**values),
            fallback or HeuristicRcaEngine(),
            Redactor("balanced"),
        )
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


async def test_throttling_is_retried_within_the_deadline(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(rpm=600, timeout=10)
    fake.script(throttle(), throttle())
    report = await engine.explain(incident(), LINES, RcaContext())
    assert report.engine == f"bedrock:{MODEL}" and report.status is RcaStatus.OK
    assert fake.statuses() == [429, 429, 200]
    assert engine.stats.throttled == 2 and engine.stats.requests == 3
    assert engine.last_meta[12]["attempts"] == "3" and not engine.stats.fallbacks


async def test_throttled_until_the_deadline_falls_back_in_time(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(rpm=600, timeout=1.5)
    fake.default = throttle()
    started = time.monotonic()
    report = await engine.explain(incident(), LINES, RcaContext())
    assert time.monotonic() - started < 2.0
    assert report.engine == "heuristic" and "Bedrock analysis not used" in report.summary
    assert engine.stats.throttled >= 2 and sum(engine.stats.fallbacks.values()) == 1


async def test_a_burst_of_analyses_never_exceeds_the_rpm(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(rpm=300)  # one request every 0.2 s
    started = time.monotonic()
    tasks = [
        # six rules: six analyses (one rule's storm would share one)
        asyncio.create_task(engine.explain(incident(n, rule=f"rule-{n}"), LINES, RcaContext()))
        for n in range(6)
    ]
    await asyncio.sleep(0.1)
    # one request has gone (or, on a busy machine, is about to); the others wait their turn
    assert engine.stats.queue_depth in (5, 6) and engine.stats.oldest_wait_s > 0.05
    reports = await asyncio.gather(*tasks)
    assert time.monotonic() - started >= (6 - 1) / 5 - 0.02
    assert all(r.engine == f"bedrock:{MODEL}" for r in reports)
    # sent 0.2 s apart; arrivals may bunch a little when the machine is busy
    starts = [at for at, _, _ in fake.log]
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.2 - 0.08
    assert engine.stats.queue_depth == 0


async def test_a_slow_model_times_out_into_the_fallback(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(timeout=1)
    fake.script(slow(4.0))
    started = time.monotonic()
    report = await engine.explain(incident(), LINES, RcaContext())
    assert time.monotonic() - started < 1.5
    assert report.engine == "heuristic" and "no answer within 1s" in report.summary
    assert engine.stats.fallbacks == {"timeout": 1}
    assert engine.last_meta[12]["fallback"] == "timeout"


@pytest.mark.parametrize(
    ("code", "status"), [("ValidationException", 400), ("ResourceNotFoundException", 404)]
)
async def test_the_fallback_model_answers_when_the_primary_refuses(
    fake: FakeBedrock, make_engine: MakeEngine, code: str, status: int
) -> None:
    engine = make_engine(fallback_model_id=FALLBACK)
    fake.script(error(code, status, "The provided model identifier is invalid."))
    report = await engine.explain(incident(), LINES, RcaContext())
    assert [r.model_id for r in fake.requests] == [MODEL, FALLBACK]
    assert fake.requests[1].raw_path.startswith("/model/arn%3Aaws%3Abedrock%3A")
    assert "%2Fus.amazon.nova-lite-v1%3A0/converse" in fake.requests[1].raw_path
    assert report.engine == f"bedrock:{FALLBACK}" and report.status is RcaStatus.OK
    assert engine.stats.fallback_model == 1 and engine.stats.errors == {code: 1}


async def test_the_fallback_model_is_tried_once_then_the_heuristic(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(fallback_model_id=FALLBACK)
    fake.default = error("ResourceNotFoundException", 404, "Model not found")
    report = await engine.explain(incident(), LINES, RcaContext())
    assert len(fake.requests) == 2 and report.engine == "heuristic"
    assert "the request was refused (ResourceNotFoundException)" in report.summary


async def test_a_refusal_without_a_fallback_model_gives_the_heuristic(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    fake.script(error("AccessDeniedException", 403, "You don't have access to the model"))
    report = await engine.explain(incident(), LINES, RcaContext())
    assert len(fake.requests) == 1 and report.engine == "heuristic"
    assert engine.stats.fallbacks == {"error": 1}


async def test_an_unreachable_endpoint_gives_the_heuristic(
    fake: FakeBedrock, make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    report = await make_engine(timeout=3).explain(incident(), LINES, RcaContext())
    assert report.engine == "heuristic"
    assert "the endpoint could not be reached (EndpointConnectionError)" in report.summary


class BrokenEngine:
    async def explain(
        self, incident: Incident, evidence: Sequence[Evidence], context: RcaContext
    ) -> RcaReport:
        raise RuntimeError("the fallback is broken too")


async def test_nothing_ever_raises_to_the_caller(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(fallback=BrokenEngine())
    fake.script(throttle(), error("ModelErrorException", 424, "boom"))
    report = await engine.explain(incident(), LINES, RcaContext())
    assert report.status is RcaStatus.UNAVAILABLE
    assert "root-cause analysis failed" in report.summary and "ModelErrorException" in (
        report.summary
    )


async def test_a_throttled_answer_with_retry_after_is_retried_no_sooner(
    fake: FakeBedrock, make_engine: MakeEngine
) -> None:
    engine = make_engine(rpm=6000, timeout=10)
    fake.script(throttle(retry_after=1.0))  # Bedrock asks for a second
    report = await engine.explain(incident(), LINES, RcaContext())
    assert report.status is RcaStatus.OK and report.engine == f"bedrock:{MODEL}"
    sent = [at for at, _, _ in fake.log]
    refused = [at for at, _, status in fake.log if status == 429]
    assert refused and sent[-1] - refused[0] >= 0.95  # the next try waited what it was told
