"""SQLite writers of one process take turns in arrival order: a thread writing back to back
(a storm's pushes being applied) does not starve one waiting to write (a card's record)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from bot.store.db import make_engine


def test_a_waiting_writer_goes_next_not_after_a_run_of_writes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (who TEXT, n INTEGER)"))
    stop = threading.Event()
    busy_commits: list[float] = []

    def busy() -> None:  # one long write after another, with no pause between them
        n = 0
        while not stop.is_set():
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES ('busy', :n)"), {"n": n})
                time.sleep(0.03)
            busy_commits.append(time.monotonic())
            n += 1

    runner = threading.Thread(target=busy)
    runner.start()
    try:
        time.sleep(0.1)
        waits = []
        for n in range(5):
            asked = time.monotonic()
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES ('other', :n)"), {"n": n})
            got = time.monotonic()
            # how many of the busy writer's transactions committed while this one waited
            waits.append(sum(1 for at in busy_commits if asked < at < got))
            time.sleep(0.01)
    finally:
        stop.set()
        runner.join()
        engine.dispose()
    # at most the one under way when it asked, and one begun before its request was queued;
    # without turns it waits for hundreds (SQLite's busy handler sleeps while the other writes)
    assert max(waits) <= 2, waits
