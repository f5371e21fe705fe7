"""BOT_RCA=bedrock end to end: the card goes out, Bedrock's answer updates it, the audit
chain records what was asked, and Re-analyse asks again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.domain.incident import Command, CommandKind
from bot.pipeline.ingest import ingest
from bot.settings import load_settings
from bot.store.repo import AUDIT, INCIDENTS, OUTBOX
from bot.wiring import Runtime
from tests.builders import alert, console_policy, mark_cards_posted
from tests.conftest import FakeClock
from tests.fakes.bedrock import FakeBedrock, aws_test_env, good


async def test_bedrock_answer_updates_the_card_and_is_audited(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: FakeClock
) -> None:
    aws_test_env(monkeypatch, tmp_path)
    with FakeBedrock(default=good(confidence=0.8)) as fake:
        monkeypatch.setenv("BEDROCK_MODEL_ID", "anthropic.claude-test-v1:0")
        monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fake.url)
        settings = load_settings(
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            local_events_path=tmp_path / "events.db",
            generator=False,
            rca="bedrock",
        )
        runtime = Runtime(settings, clock=clock)
        await runtime.connect(attempts=1)
        with runtime.engine.begin() as conn:
            (incident,) = ingest(
                conn, [alert(clock.now(), evidence=6)], clock.now(), console_policy()
            ).created
        mark_cards_posted(runtime.engine, clock.now())  # the card is out
        report = await runtime.enricher.analyse(incident)
        assert report is not None and report.engine.startswith("bedrock:")
        assert fake.requests and "anthropic.claude-test-v1:0" in fake.requests[0].model_id
        with runtime.engine.connect() as conn:
            row = conn.execute(select(INCIDENTS)).one()
            audit = conn.execute(select(AUDIT).where(AUDIT.c.action == "rca")).one()
            kinds = [r.kind for r in conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))]
        assert row.rca_status == "ok" and kinds == ["post", "update"]
        meta = json.loads(audit.detail)
        assert len(meta["prompt_sha256"]) == 64 and meta["model_id"]
        assert int(meta["input_tokens"]) > 0 and "answer" in meta
        # Re-analyse (responder role) asks Bedrock again rather than answering from the cache
        await runtime.interactions.execute(
            incident, Command(CommandKind.REANALYSE, actor="console:ann", surface="api")
        )
        assert runtime.enricher.depth == 1
        before = len(fake.requests)
        await runtime.enricher.analyse(incident)
        assert len(fake.requests) == before + 1
        runtime.engine.dispose()
