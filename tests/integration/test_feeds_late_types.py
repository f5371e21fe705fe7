"""Late events for the rule types that judge by event time (``spike``, ``flatline``, ``change``,
``anomaly``, ``correlation``, ``threshold`` with ``<``, ``cardinality`` with ``below``) and for
``new_term``, which judges by what it has seen: through the real rule runner and one shared
search, for random event streams with random indexing lags within the lag the feed measured,
each run raises exactly the groups a full-window evaluation over the same windows raises once
every event is indexed (the backtest's view). Single scenarios are in
``test_feeds_late_scenarios.py``."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from bot.metrics import Metrics
from bot.runner import RuleRunner
from bot.store.repo import INCIDENTS, RULE_STATE
from detectors.feeds import FeedSet
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.planning import plan_windows
from detectors.runner import run_rule
from detectors.types import RULE_TYPES, rule_type
from detectors.window import Window
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.integration.test_feeds_property import T0, _database

SPAN_S = 40  # events happen within this many seconds after T0
MAX_LAG_S = 10  # the largest indexing lag a case draws
HOSTS = ("h1", "h2", "h3", "h4")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


@dataclass(frozen=True, slots=True)
class Case:
    interval_s: int
    #: the largest lag of the case; the first event the feed fetches has it, so the feed has
    #: measured it before any window is judged
    worst_lag_s: float
    #: host, seconds after T0, lag as a fraction of the worst, user, state
    events: list[tuple[str, float, float, str, str]]


cases = st.builds(
    Case,
    interval_s=st.integers(1, 4),
    worst_lag_s=st.floats(0, MAX_LAG_S, allow_nan=False).map(lambda s: round(s, 2)),
    events=st.lists(
        st.tuples(
            st.sampled_from(HOSTS),
            st.floats(0, SPAN_S, allow_nan=False).map(lambda s: round(s, 3)),
            st.floats(0, 1, allow_nan=False),
            st.sampled_from(USERS),
            st.sampled_from(("up", "down")),
        ),
        min_size=4,
        max_size=50,
    ),
)

COMMON: dict[str, Any] = {
    "title": "late {host}",
    "query": "index=main",
    "window": "12s",
    "max_index_lag": "30s",
    "severity": "low",
    "category": "application",
}


def held_rules(interval_s: int) -> list[Rule]:
    """One rule of each type that waits for the measured lag, and a ``new_term`` rule."""
    specs: list[dict[str, Any]] = [
        {
            "id": "spike",
            "type": "spike",
            "group_by": ["host"],
            "spike": {"ratio": 2, "min_current": 2},
        },
        {
            "id": "flatline",
            "type": "flatline",
            "group_by": ["host"],
            "flatline": {"threshold": 2, "timeframe": "6s", "forget_after": "1m"},
        },
        {
            "id": "change",
            "type": "change",
            "group_by": ["host"],
            "change": {"compare_field": "state"},
        },
        {
            "id": "anomaly",
            "type": "anomaly",
            "group_by": ["host"],
            "anomaly": {"bucket": "2s", "min_history": 3, "history": 10, "threshold": 2},
        },
        {
            "id": "correlation",
            "type": "correlation",
            "group_by": ["host"],
            "correlation": {
                "ordered": True,
                "within": "10s",
                "conditions": [
                    {"name": "down", "match": {"state": "down"}},
                    {"name": "up", "match": {"state": "up"}},
                ],
            },
        },
        {
            "id": "few",
            "type": "threshold",
            "query": "index=main | stats count by host",
            "group_by": ["host"],
            "threshold": {"field": "count", "op": "<", "value": 3},
        },
        {
            "id": "few-users",
            "type": "cardinality",
            "group_by": ["host"],
            "cardinality": {"cardinality_field": "user", "below": 3},
        },
        {
            "id": "new-term",
            "type": "new_term",
            "title": "new user {user}",
            "new_term": {"fields": ["user"], "learn_for": "0s"},
        },
    ]
    return [
        RULE_TYPES[spec["type"]].model.model_validate(
            {**COMMON, "interval": f"{interval_s}s", **spec}
        )
        for spec in specs
    ]


def events_of(case: Case, lagged: bool) -> list[Event]:
    """The case's events (indexed their lag after they happened when ``lagged``, else at once),
    and first the one that lets the feed measure the worst lag: indexed half a second after
    the first fetch, the worst lag after it happened."""
    worst = case.worst_lag_s
    rows = [("h1", 0.5 - worst, 1.0, "alice", "up"), *case.events]
    found = []
    for n, (host, at, share, user, state) in enumerate(rows):
        moment = T0 + timedelta(seconds=at)
        found.append(
            Event(
                time=moment,
                raw=f"n={n} user={user} state={state}",
                host=host,
                indexed=moment + timedelta(seconds=worst * share) if lagged else None,
            )
        )
    return found


@dataclass(slots=True)
class Run:
    """One run of one rule: the windows it judged and the groups it raised."""

    windows: list[Window]
    groups: set[str]


async def live(case: Case, folder: Path) -> dict[str, list[Run]]:
    """Every rule through the real runner, sharing one feed, every interval until the last
    event is indexed and judged."""
    store = EventStore(":memory:")
    store.add(events_of(case, lagged=True))
    rules = held_rules(case.interval_s)
    backend = LocalSearchBackend(store)
    feeds = FeedSet(backend, rules, max_index_lag=timedelta(seconds=30), learn=timedelta(seconds=5))
    engine = _database(folder)
    clock = FakeClock(T0)
    runner = RuleRunner(
        engine,
        backend,
        rules,
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
        feeds=feeds,
    )
    runs: dict[str, list[Run]] = {rule.id: [] for rule in rules}
    ends: dict[str, datetime | None] = {rule.id: None for rule in rules}
    hold = 1.25 * case.worst_lag_s + 2
    stop = T0 + timedelta(seconds=SPAN_S + MAX_LAG_S + hold + 12 + 3 * case.interval_s)
    while clock.now() <= stop:
        for rule in rules:
            summary = await runner.run(rule.id)
            assert not summary.error, summary.error
            end = last_window_end(engine, rule.id)
            index_lag = runner.index_lag_for(rule, feeds.view(rule.id))
            windows: list[Window] = []
            if summary.windows:
                assert end is not None
                windows, _ = plan_windows(
                    clock.now(), ends[rule.id], rule, True, index_lag, end=end
                )
                assert len(windows) == summary.windows
            ends[rule.id] = end
            fired = [*summary.result.created, *summary.result.updated, *summary.result.reopened]
            runs[rule.id].append(Run(windows, group_keys(engine, fired)))
        clock.advance(case.interval_s)
    engine.dispose()
    store.close()
    return runs


def last_window_end(engine: Engine, rule_id: str) -> datetime | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(RULE_STATE.c.last_window_end).where(RULE_STATE.c.rule_id == rule_id)
        ).scalar()
    return found


def group_keys(engine: Engine, ids: Sequence[int]) -> set[str]:
    if not ids:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(select(INCIDENTS.c.group_key).where(INCIDENTS.c.id.in_(list(ids))))
        return {key.split("|", 1)[1] for (key,) in rows}


async def full_window(case: Case, rule: Rule, runs: list[Run]) -> list[set[str]]:
    """The groups each run raises when its windows are evaluated by event time over every
    event, all of them indexed (the backtest's view), with the rule's memory carried along."""
    store = EventStore(":memory:")
    store.add(events_of(case, lagged=False))
    backend = LocalSearchBackend(store)
    memory = RuleMemory()
    raised = []
    for run in runs:
        groups: set[str] = set()
        for window in run.windows:
            plain = Window(window.start, window.end, window.new_since)
            for alert in (await run_rule(rule, backend, plain, lambda s: s, memory)).alerts:
                groups.add(",".join(f"{name}={value}" for name, value in alert.group))
        raised.append(groups)
    store.close()
    return raised


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_held_back_and_index_time_rules_raise_what_the_backtest_raises(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        runs = asyncio.run(live(case, Path(folder)))
    for rule in held_rules(case.interval_s):
        expected = asyncio.run(full_window(case, rule, runs[rule.id]))
        got = [run.groups for run in runs[rule.id]]
        event(f"{rule.id} raised {'something' if any(got) else 'nothing'}")
        if rule_type(rule.type).index_time:
            # new by index time: a term fires in the run after its first event is seen, which
            # may be a later one than its earliest; the terms raised are the same
            assert set().union(*got) == set().union(*expected), rule.id
        else:
            # held back by the measured lag: each window judged with all of its events
            assert got == expected, rule.id
        # every event was judged: the last window ends after the last one happened
        assert max(w.end for run in runs[rule.id] for w in run.windows) > T0 + timedelta(
            seconds=SPAN_S
        )


# plain cases --------------------------------------------------------------------------------
