"""The audit trail is a hash chain: verify finds the first altered or removed entry."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot.store import audit
from tests.conftest import FakeClock


def _entries(engine, clock: FakeClock, count: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        with engine.begin() as conn:
            audit.append(
                conn,
                [
                    {
                        "at": clock.advance(1),
                        "actor": "ann",
                        "surface": "api",
                        "action": "acknowledge",
                        "incident_id": i,
                        "result": "applied",
                        "data": {"step": i, "output": "ok"},
                    }
                ],
            )


def test_an_untouched_chain_verifies(engine, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    _entries(engine, clock, 5)
    report = audit.verify(engine)
    assert report.ok and report.checked == 5


def test_an_altered_entry_is_named(engine, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    _entries(engine, clock, 5)
    with engine.begin() as conn:
        conn.execute(update(audit.AUDIT).where(audit.AUDIT.c.id == 3).values(actor="mallory"))
    report = audit.verify(engine)
    assert report.first_bad_id == 3 and "altered" in report.problem


def test_a_removed_entry_breaks_the_next_link(engine, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    _entries(engine, clock, 5)
    with engine.begin() as conn:
        conn.execute(audit.AUDIT.delete().where(audit.AUDIT.c.id == 2))
    report = audit.verify(engine)
    assert report.first_bad_id == 3 and "removed" in report.problem


def test_retention_of_the_oldest_keeps_the_rest_verifiable(engine, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    _entries(engine, clock, 4)
    with engine.begin() as conn:
        conn.execute(
            audit.AUDIT.delete().where(audit.AUDIT.c.at < clock.now() - timedelta(seconds=2))
        )
    assert audit.verify(engine).ok


def test_a_batch_appended_in_one_transaction_chains_in_order(engine, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        audit.append(
            conn,
            [
                {
                    "at": clock.advance(1),
                    "actor": f"rule:r{i}",
                    "action": "detect",
                    "result": "applied",
                }
                for i in range(50)
            ],
        )
    _entries(engine, clock, 2)
    report = audit.verify(engine)
    assert report.ok and report.checked == 52
