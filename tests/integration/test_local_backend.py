"""The local search backend over a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.hits import SearchQuery
from bot.errors import PermanentError
from bot.ports import HealthStatus, SearchBackend
from integrations.local import Event, EventStore, LocalSearchBackend, SplError

LATEST = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EARLIEST = LATEST - timedelta(minutes=15)


def query(text: str, earliest: datetime = EARLIEST, max_results: int = 10_000) -> SearchQuery:
    return SearchQuery(text=text, earliest=earliest, latest=LATEST, max_results=max_results)


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    s = EventStore(tmp_path / "data" / "events.db")
    yield s
    s.close()


@pytest.fixture
def backend(store: EventStore) -> LocalSearchBackend:
    return LocalSearchBackend(store)


def at(minutes_ago: float) -> datetime:
    return LATEST - timedelta(minutes=minutes_ago)


def web(minutes_ago: float, raw: str, **kw: object) -> Event:
    return Event(time=at(minutes_ago), raw=raw, **kw)  # type: ignore[arg-type]


# --- the store ------------------------------------------------------------------------------


def test_store_creates_its_directory_and_a_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "events.db"
    with EventStore(path) as s:
        assert s.add([web(1, "hello")]) == 1
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_scan_returns_rows_in_time_order_with_builtins_and_explicit_fields(
    store: EventStore,
) -> None:
    store.add(
        [
            web(2, "second", host="h2", fields={"user": "bob"}),
            web(5, "first", index="web", sourcetype="nginx", source="/var/log/a", host="h1"),
        ]
    )
    rows = list(store.scan(EARLIEST, LATEST))
    assert [r["_raw"] for r in rows] == ["first", "second"]
    assert rows[0] == {
        "_time": at(5).timestamp(),
        "_indextime": at(5).timestamp(),  # indexed when it happened unless told otherwise
        "_raw": "first",
        "index": "web",
        "sourcetype": "nginx",
        "source": "/var/log/a",
        "host": "h1",
    }
    assert rows[1]["user"] == "bob"
    assert [r["_raw"] for r in store.scan(EARLIEST, LATEST, newest_first=True)] == [
        "second",
        "first",
    ]


def test_scan_filters_by_index_sourcetype_host_case_insensitively(store: EventStore) -> None:
    store.add(
        [
            web(1, "a", index="web", sourcetype="nginx", host="web01"),
            web(1, "b", index="app", sourcetype="nginx", host="web01"),
            web(1, "c", index="web", sourcetype="json", host="web02"),
        ]
    )
    assert [r["_raw"] for r in store.scan(EARLIEST, LATEST, index="WEB")] == ["a", "c"]
    assert [r["_raw"] for r in store.scan(EARLIEST, LATEST, sourcetype="nginx")] == ["a", "b"]
    assert [r["_raw"] for r in store.scan(EARLIEST, LATEST, index="web", host="web02")] == ["c"]


def test_scan_contains_groups(store: EventStore) -> None:
    store.add([web(1, "Disk FULL"), web(1, "disk ok"), web(1, "50%_done")])
    assert [r["_raw"] for r in store.scan(EARLIEST, LATEST, contains=[["full", "nope"]])] == [
        "Disk FULL"
    ]
    assert [r["_raw"] for r in store.scan(EARLIEST, LATEST, contains=[["%_"]])] == ["50%_done"]


def test_count_and_purge_before(store: EventStore) -> None:
    store.add([web(30, "old"), web(20, "older than cut"), web(5, "new")])
    assert store.purge_before(at(10)) == 2
    assert store.count() == 1


def test_memory_store_works_from_several_threads() -> None:
    with EventStore(":memory:") as s:
        threads = [threading.Thread(target=s.add, args=([web(1, f"t{i}")],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.count() == 8


def test_event_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Event(time=datetime(2024, 5, 1, 12, 0), raw="x")


def test_event_time_is_kept_in_utc() -> None:
    plus_two = datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone()
    assert Event(time=plus_two, raw="x").time.tzinfo is UTC


# --- searching ------------------------------------------------------------------------------


def test_backend_satisfies_the_port(backend: LocalSearchBackend) -> None:
    assert isinstance(backend, SearchBackend)


async def test_window_is_earliest_inclusive_latest_exclusive(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add(
        [
            Event(time=EARLIEST, raw="at earliest"),
            Event(time=EARLIEST - timedelta(microseconds=1), raw="just before"),
            Event(time=LATEST, raw="at latest"),
            Event(time=LATEST - timedelta(microseconds=1), raw="just inside"),
        ]
    )
    hits = await backend.search(query("*"))
    assert sorted(h.raw for h in hits) == ["at earliest", "just inside"]


async def test_event_hits_carry_time_raw_and_every_field_as_strings(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    raw = 'GET /x status=503 bytes=12 msg="upstream timeout"'
    store.add([web(3, raw, index="web", host="web01", fields={"region": "eu"})])
    (hit,) = await backend.search(query("index=web status>=500"))
    assert hit.time == at(3)
    assert hit.raw == raw
    assert hit.fields["_raw"] == raw
    assert hit.fields["_time"] == "2024-05-01T11:57:00.000+00:00"
    assert hit.fields["status"] == "503"
    assert hit.fields["msg"] == "upstream timeout"
    assert hit.fields["region"] == "eu"
    assert hit.fields["host"] == "web01"
    assert all(isinstance(v, str) for v in hit.fields.values())


async def test_events_come_newest_first_and_are_capped(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add([web((i + 1) / 10, f"n={i}") for i in range(50)])
    hits = await backend.search(query("*", max_results=10))
    assert [h.fields["n"] for h in hits] == [str(i) for i in range(10)]


async def test_transforming_hits_render_rows(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add([web(1, "status=500", host="web01")] * 3 + [web(1, "status=500", host="web 02")])
    hits = await backend.search(query("status=500 | stats count by host"))
    assert [(h.time, h.raw) for h in hits] == [
        (LATEST, 'count=1 host="web 02"'),
        (LATEST, "count=3 host=web01"),
    ]
    assert hits[1].fields == {"host": "web01", "count": "3"}


async def test_transforming_hits_use_the_row_time_when_there_is_one(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add([web(1.5, "x"), web(1.2, "x"), web(0.5, "x")])
    hits = await backend.search(query("x | bin _time span=1m | stats count by _time"))
    assert [(h.time, h.fields["count"]) for h in hits] == [(at(2), "2"), (at(1), "1")]


async def test_index_and_sourcetype_prefilter(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add(
        [
            web(1, "error one", index="web", sourcetype="nginx"),
            web(1, "error two", index="app", sourcetype="nginx"),
            web(1, "error three", index="web", sourcetype="json"),
        ]
    )
    hits = await backend.search(query("index=WEB sourcetype=nginx error"))
    assert [h.raw for h in hits] == ["error one"]
    assert len(await backend.search(query("index=web* error"))) == 2


async def test_inline_earliest_narrows_the_scan(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add([web(10, "x old"), web(2, "x new")])
    hits = await backend.search(query("earliest=-5m x"))
    assert [h.raw for h in hits] == ["x new"]


async def test_bad_query_raises_spl_error(backend: LocalSearchBackend) -> None:
    with pytest.raises(SplError, match="unsupported command 'transaction'"):
        await backend.search(query("x | transaction host"))


async def test_searches_run_concurrently(store: EventStore, backend: LocalSearchBackend) -> None:
    store.add([web(i / 100, f"status={500 + i % 3} host=h{i % 4}") for i in range(1000)])
    texts = [f"status={500 + i % 3} | stats count by host" for i in range(24)]
    results = await asyncio.gather(*(backend.search(query(t)) for t in texts))
    assert all(sum(int(h.fields["count"]) for h in hits) in (333, 334) for hits in results)


async def test_ten_thousand_events_search_quickly(
    store: EventStore, backend: LocalSearchBackend
) -> None:
    store.add(
        web(
            (i + 1) * 0.0015,
            f"GET /api status={200 + (i % 7 == 0) * 303} ms={i % 900}",
            host=f"w{i % 5}",
        )
        for i in range(10_000)
    )
    q = query("status>=500 | stats count, perc95(ms) by host")
    await backend.search(q)
    started = time.perf_counter()
    hits = await backend.search(q)
    assert time.perf_counter() - started < 1.0
    assert sum(int(h.fields["count"]) for h in hits) == 1429


# --- concurrency with another writer and health ---------------------------------------------


async def test_reads_and_writes_wait_out_another_connections_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    store = EventStore(path)
    backend = LocalSearchBackend(store)
    store.add([web(1, "before")])
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO events (time_us, index_name, sourcetype, source, host, raw)"
        " VALUES (?, 'main', '', '', '', 'from cli')",
        (int(at(1).timestamp() * 1_000_000),),
    )
    released = threading.Timer(0.3, other.execute, args=("COMMIT",))
    released.start()
    try:
        hits = await backend.search(query("*"))  # WAL: reading is not blocked by the writer
        assert [h.raw for h in hits] == ["before"]
        await asyncio.to_thread(store.add, [web(1, "after")])  # waits for the lock, then writes
        hits = await backend.search(query("*"))
        assert sorted(h.raw for h in hits) == ["after", "before", "from cli"]
    finally:
        released.join()
        other.close()
        store.close()


async def test_events_from_a_concurrent_writer_become_visible(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    reader = EventStore(path)
    writer = EventStore(path)  # its own connections, like a CLI process
    backend = LocalSearchBackend(reader)

    def write() -> None:
        for batch in range(20):
            writer.add(web(1, f"batch={batch} item={i}") for i in range(50))

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while thread.is_alive():
            hits = await backend.search(query("* | stats count"))
            assert int(hits[0].fields["count"]) % 50 == 0  # never half a transaction
        thread.join()
        hits = await backend.search(query("* | stats count"))
        assert hits[0].fields["count"] == "1000"
    finally:
        writer.close()
        reader.close()


async def test_check_reports_event_count(store: EventStore, backend: LocalSearchBackend) -> None:
    store.add([web(1, "a"), web(2, "b")])
    health = await backend.check()
    assert (health.status, health.reason) == (HealthStatus.OK, "2 events")


def _corrupt(path: Path) -> None:
    for leftover in path.parent.glob(path.name + "-*"):
        leftover.unlink()
    path.write_bytes(b"this is not a database" * 100)


async def test_check_and_search_when_the_file_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = EventStore(path)
    store.add([web(1, "x")])
    store.close()
    _corrupt(path)
    backend = LocalSearchBackend(store)
    health = await backend.check()
    assert health.status is HealthStatus.DOWN
    assert "not a database" in health.reason
    with pytest.raises(PermanentError):
        await backend.search(query("x"))
    store.close()
