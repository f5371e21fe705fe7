"""``BOT_RCA=off``: a new incident says from its first card that root-cause analysis is off;
no analysis is queued, written, audited or re-posted for it (in a storm, that is a write and a
card update per incident saved)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.store.repo import INCIDENTS, OUTBOX, TIMELINE
from bot.store.tables import AuditRow
from tests.conftest import FakeClock
from tests.push_env import bearer, fixture, push_client

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]


async def test_rca_off_incidents_say_so_from_the_first_card(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async for client, runtime in push_client(url, tmp_path, clock, rca="off"):
        body = fixture("prometheus_firing.json")
        assert (await client.post("/api/v2/alerts", json=body, headers=bearer())).is_success
        with runtime.engine.connect() as conn:
            found = conn.execute(select(INCIDENTS)).all()
            kinds = {r.kind for r in conn.execute(select(TIMELINE))}
            messages = {r.kind for r in conn.execute(select(OUTBOX))}
            audited = {r.action for r in conn.execute(select(AUDIT))}
        assert len(found) == 2
        assert {r.rca_status for r in found} == {"unavailable"}
        assert all("turned off (BOT_RCA=off)" in r.rca_json for r in found)
        assert runtime.enricher.depth == 0  # nothing queued for analysis
        assert "rca" not in kinds and "rca" not in audited
        assert messages == {"post"}  # no card update follows to say the analysis is off


async def test_with_an_engine_new_incidents_wait_for_their_analysis(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async for client, runtime in push_client(url, tmp_path, clock, rca="heuristic"):
        body = fixture("prometheus_firing.json")
        assert (await client.post("/api/v2/alerts", json=body, headers=bearer())).is_success
        with runtime.engine.connect() as conn:
            assert {r.rca_status for r in conn.execute(select(INCIDENTS))} == {"pending"}
        assert runtime.enricher.depth == 2
