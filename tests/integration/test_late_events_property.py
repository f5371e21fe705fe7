"""For random event streams with random indexing lags up to ``max_index_lag``, index-time runs of
a ``frequency`` rule (the scheduler's planner, the rule runner, the local backend) count every
event exactly once, in the first run after it was indexed, and raise exactly the groups a
full-window evaluation over all the events raises, each within one interval of its burst
becoming searchable."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.hits import Hit, SearchQuery
from bot.scheduler import plan_windows
from detectors.runner import run_rule
from detectors.types import rule_type
from detectors.types.frequency import FrequencyRule
from detectors.window import Window
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPAN_S = 60  # events happen within a minute after T0
MAX_LAG_S = 20


@dataclass(frozen=True, slots=True)
class Case:
    interval_s: int
    need: int
    events: list[tuple[str, float, float]]  # host, seconds after T0, indexing lag in seconds


cases = st.builds(
    Case,
    interval_s=st.integers(1, 6),
    need=st.integers(2, 5),
    events=st.lists(
        st.tuples(
            st.sampled_from(["h1", "h2", "h3"]),
            st.floats(0, SPAN_S, allow_nan=False).map(lambda s: round(s, 3)),
            st.floats(0, MAX_LAG_S, allow_nan=False).map(lambda s: round(s, 3)),
        ),
        max_size=40,
    ),
)


def make_rule(case: Case) -> FrequencyRule:
    return FrequencyRule.model_validate(
        {
            "id": "burst",
            "title": "burst on {host}",
            "type": "frequency",
            "query": "index=main",
            "interval": f"{case.interval_s}s",
            "window": "30s",
            "max_index_lag": f"{MAX_LAG_S}s",
            "group_by": ["host"],
            "frequency": {"num_events": case.need, "timeframe": "10s"},
            "severity": "low",
            "category": "application",
        }
    )


def oracle(case: Case) -> dict[str, float]:
    """Each group that a full-window evaluation over every event raises, with the moment (in
    seconds after T0) its first qualifying burst was wholly indexed."""
    ready: dict[str, float] = {}
    for host in {e[0] for e in case.events}:
        mine = sorted((at, at + lag) for h, at, lag in case.events if h == host)
        first = 0
        for last in range(len(mine)):
            while mine[last][0] - mine[first][0] >= 10:
                first += 1
            indexed = sorted(i for _, i in mine[first : last + 1])
            if len(indexed) >= case.need:
                moment = indexed[case.need - 1]
                ready[host] = min(ready.get(host, moment), moment)
    return ready


def full_window(case: Case, rule: FrequencyRule) -> set[str]:
    """The groups the rule type raises over all the events at once (all of them new)."""
    hits = [
        Hit(time=T0 + timedelta(seconds=at), fields={"host": h}, raw=f"host={h} n={n}")
        for n, (h, at, _) in enumerate(case.events)
    ]
    window = Window(start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1), new_since=T0)
    alerts = rule_type("frequency").evaluate(rule, hits, window, None)  # type: ignore[arg-type]
    return {dict(alert.group)["host"] for alert in alerts}


def event_store(case: Case) -> EventStore:
    """The case's events in an in-memory store, each indexed its lag after it happened."""
    store = EventStore(":memory:")
    store.add(
        Event(
            time=T0 + timedelta(seconds=at),
            raw=f"host={h} n={n}",
            host=h,
            indexed=T0 + timedelta(seconds=at + lag),
        )
        for n, (h, at, lag) in enumerate(case.events)
    )
    return store


async def replay(case: Case, rule: FrequencyRule) -> tuple[dict[str, float], dict[str, int]]:
    """Run the rule every interval until every event is indexed: when each group first fired
    (seconds after T0) and how many runs counted each event as new."""
    store = event_store(case)
    backend = LocalSearchBackend(store)
    lag = rule.max_index_lag
    fired: dict[str, float] = {}
    counted: dict[str, int] = {}
    last_end: datetime | None = None
    now = T0
    while now <= T0 + timedelta(seconds=SPAN_S + MAX_LAG_S + 2 * case.interval_s):
        windows, skipped = plan_windows(now, last_end, rule, True, lag)
        assert skipped == timedelta(0)
        for window in windows:
            outcome = await run_rule(rule, backend, window, lambda s: s)
            for sourcetype_lag in outcome.index_lags:
                assert 0 <= sourcetype_lag[1] <= MAX_LAG_S + 0.001
            hits = await backend.search(_query(rule, window))  # the same: which were new
            for hit in hits:
                if window.is_new(hit):
                    counted[hit.raw] = counted.get(hit.raw, 0) + 1
            for alert in outcome.alerts:
                host = dict(alert.group)["host"]
                fired.setdefault(host, (window.end - T0).total_seconds())
            last_end = window.end
        now += timedelta(seconds=case.interval_s)
    store.close()
    return fired, counted


def _query(rule: FrequencyRule, window: Window) -> SearchQuery:
    return SearchQuery(rule.query, window.start, window.end, index_latest=window.end)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_index_time_runs_raise_what_a_full_window_raises_once_indexed(case: Case) -> None:
    rule = make_rule(case)
    fired, counted = asyncio.run(replay(case, rule))
    expected = oracle(case)
    assert set(fired) == set(expected) == full_window(case, rule)
    # every event is new in exactly one run
    assert counted == {f"host={h} n={n}": 1 for n, (h, _, _) in enumerate(case.events)}
    # each group fires in the first run after its burst was wholly indexed
    for host, moment in expected.items():
        assert moment < fired[host] <= moment + case.interval_s + 1e-6
