"""eventstats, streamstats, top and rare in the SPL subset, as Splunk documents them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.local import SplError, parse, run

LATEST = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)
EARLIEST = LATEST - timedelta(hours=1)
T0 = LATEST.timestamp()


def event(raw: str, ago: float) -> dict:
    return {"_time": T0 - ago, "_raw": raw, "index": "web", "host": "web-1"}


def spl(text: str, rows: list[dict]) -> list[dict]:
    return run(parse(text), rows, EARLIEST, LATEST)


# newest first, as the backend feeds events
LOGS = [
    event("src=10.0.0.1 status=500 bytes=100", 10),
    event("src=10.0.0.2 status=200 bytes=300", 20),
    event("src=10.0.0.1 status=500 bytes=200", 30),
    event("src=10.0.0.3 status=404 bytes=50", 40),
    event("src=10.0.0.1 status=200 bytes=400", 50),
    event("status=200 bytes=10", 60),
]


def test_eventstats_adds_the_group_aggregate_to_every_event() -> None:
    rows = spl("* | eventstats count as n sum(bytes) as total by src | table src n total", LOGS)
    assert rows == [
        {"src": "10.0.0.1", "n": 3, "total": 700},
        {"src": "10.0.0.2", "n": 1, "total": 300},
        {"src": "10.0.0.1", "n": 3, "total": 700},
        {"src": "10.0.0.3", "n": 1, "total": 50},
        {"src": "10.0.0.1", "n": 3, "total": 700},
        {},  # no src: no group, no aggregate, the event stays
    ]


def test_eventstats_without_by_and_a_where_on_its_result() -> None:
    rows = spl("* | eventstats avg(bytes) as mean | where bytes > mean | table bytes", LOGS)
    assert rows == [{"bytes": "300"}, {"bytes": "200"}, {"bytes": "400"}]


def test_eventstats_keeps_the_results_events() -> None:
    pipeline = parse("* | eventstats count by src")
    assert not pipeline.is_transforming
    assert all("_raw" in row for row in run(pipeline, LOGS, EARLIEST, LATEST))


def test_streamstats_count_is_a_running_count_in_event_order() -> None:
    rows = spl("* | streamstats count | table count", LOGS)
    assert [r["count"] for r in rows] == [1, 2, 3, 4, 5, 6]
    rows = spl("* | streamstats count as seen by src | table src seen", LOGS)
    assert [(r.get("src"), r.get("seen")) for r in rows] == [
        ("10.0.0.1", 1),
        ("10.0.0.2", 1),
        ("10.0.0.1", 2),
        ("10.0.0.3", 1),
        ("10.0.0.1", 3),
        (None, None),
    ]


def test_streamstats_current_false_and_window() -> None:
    rows = spl("* | streamstats current=f count as before | table before", LOGS)
    assert [r["before"] for r in rows] == [0, 1, 2, 3, 4, 5]
    rows = spl("* | streamstats window=2 sum(bytes) as last2 | table last2", LOGS)
    assert [r["last2"] for r in rows] == [100, 400, 500, 250, 450, 410]
    rows = spl("* | streamstats current=false window=2 max(bytes) as prev | table prev", LOGS)
    assert [r.get("prev") for r in rows] == [None, 100, 300, 300, 200, 400]


def test_top_counts_value_combinations_most_common_first() -> None:
    rows = spl("* | top src", LOGS)
    assert rows == [
        {"src": "10.0.0.1", "count": 3, "percent": 60.0},
        {"src": "10.0.0.2", "count": 1, "percent": 20.0},
        {"src": "10.0.0.3", "count": 1, "percent": 20.0},
    ]
    assert parse("* | top src").is_transforming
    assert parse("* | top src").output_fields() == {"src", "count", "percent"}


def test_top_options_and_by() -> None:
    assert spl("* | top 1 status", LOGS) == [{"status": "200", "count": 3, "percent": 50.0}]
    rows = spl("* | top limit=1 status countfield=n showperc=f by src", LOGS)
    assert rows == [
        {"src": "10.0.0.1", "status": "500", "n": 2},
        {"src": "10.0.0.2", "status": "200", "n": 1},
        {"src": "10.0.0.3", "status": "404", "n": 1},
    ]
    rows = spl("* | top limit=0 src status showcount=false", LOGS)
    assert rows[0] == {"src": "10.0.0.1", "status": "500", "percent": 40.0}
    assert len(rows) == 4


def test_rare_counts_least_common_first() -> None:
    assert spl("* | rare status", LOGS) == [
        {"status": "404", "count": 1, "percent": 16.666667},
        {"status": "500", "count": 2, "percent": 33.333333},
        {"status": "200", "count": 3, "percent": 50.0},
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x | top", "top needs a field at position 4"),
        ("x | top limit=ten src", "limit= takes a whole number, not 'ten'"),
        ("x | top src useother=t", "unsupported top option 'useother'"),
        ("x | top src by", "expected a field name after 'by'"),
        ("x | streamstats reset_on_change=t count", "streamstats reset_on_change= is not"),
        ("x | streamstats window=x count", "window= takes a whole number"),
        ("x | streamstats current=maybe count", "current= takes true or false, not 'maybe'"),
        ("x | eventstats", "expected a stats function such as count"),
        ("x | eventstats foo(bytes)", "unsupported stats function 'foo'"),
        ("x | eventstats count by host extra=1", "unexpected argument to 'eventstats'"),
    ],
)
def test_errors(query: str, message: str) -> None:
    with pytest.raises(SplError) as caught:
        parse(query)
    assert message in str(caught.value)
