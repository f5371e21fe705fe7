"""Events that reach a fed rule late, counted where they happened.

A run of a rule that reads a feed (``detectors.feeds``) may receive events whose time belongs to
windows already evaluated: events the late sweep found, or (for event-time rule types) events
indexed after the run that covered their time. Counted in the current window only, they would
change nothing; a backtest over all the events would have raised what they complete. So:

- ``frequency`` and ``new_term`` (new by index time): the events the sweep found before the
  window's start are evaluated with the span around them (they are new to this run; a
  ``new_term`` rule's memory of seen terms goes along, so only terms first seen now fire);
- ``threshold`` and ``cardinality`` (when more events can only make them true): the past windows
  the late events fall in (a step apart, back from where the previous run ended) are evaluated
  again with every event seen so far;
- every other type is *held back* (:func:`held_back`): its window ends the measured lag
  allowance before its feed's data ends, so the events of a window have arrived when it is
  judged. An event later than the allowance is counted by the windows judged after it arrived
  that still hold it; a window already judged is not judged again. A type whose memory skips
  what it has taken (``change``) reaches back for such events older than its window
  (:func:`held_window`), so a group's newest value is taken however late it arrived.

What they raise joins the run's alerts (one per group; the current window's wins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.domain.hits import Alert
from detectors.feeds import FeedView
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.runner import RunResult, run_rule
from detectors.types import rule_type
from detectors.window import Window


def held_back(rule: Rule) -> bool:
    """Whether a fed ``rule``'s windows wait for its feed's measured lag: its type neither
    judges "new" by index time nor can evaluate past windows again."""
    kind = rule_type(rule.type)
    return not kind.index_time and not kind.revisit(rule)


def held_window(rule: Rule, view: FeedView, window: Window, seen_until: datetime) -> Window:
    """A held-back ``window``, judged with every event its feed fetched before ``seen_until``;
    for the types that may read back, widened back to the oldest event that reached the feed
    since the previous run and is older than the window (later than the lag allowance)."""
    window = replace(window, seen_until=seen_until)
    if not rule_type(rule.type).reads_back:
        return window
    start = window.start.timestamp()
    late = [t for t in view.late_times(window.new_since, seen_until) if t < start]
    if not late:
        return window
    return replace(window, start=datetime.fromtimestamp(min(late), UTC))


async def with_late_events(
    rule: Rule,
    view: FeedView,
    window: Window,
    outcome: RunResult,
    redact: Callable[[str], str],
    max_index_lag: timedelta,
    memory: RuleMemory | None = None,
) -> RunResult:
    """``outcome`` of ``window``, plus what the late events this run received raise where
    they happened (``memory``: the rule's, for the types that keep state)."""
    kind = rule_type(rule.type)
    if kind.index_time:
        found = await _reach_back(rule, view, window, redact, memory)
    elif kind.revisit(rule):
        found = await _past_windows(rule, view, window, redact, max_index_lag)
    else:
        return outcome
    if not found:
        return outcome
    alerts = {alert.group_key: alert for alert in outcome.alerts}
    for alert in found:
        alerts.setdefault(alert.group_key, alert)
    return replace(outcome, alerts=list(alerts.values()))


async def _reach_back(
    rule: Rule,
    view: FeedView,
    window: Window,
    redact: Callable[[str], str],
    memory: RuleMemory | None,
) -> list[Alert]:
    """The window widened back to the oldest event the sweep found before its start."""
    assert window.index_since is not None
    late = view.late_times(window.index_since, window.end)
    if not late or min(late) >= window.start.timestamp():
        return []
    start = datetime.fromtimestamp(min(late), UTC) - rule.window
    wider = Window(start, window.end, window.new_since, index_since=window.index_since)
    return (await run_rule(rule, view, wider, redact, memory)).alerts


async def _past_windows(
    rule: Rule,
    view: FeedView,
    window: Window,
    redact: Callable[[str], str],
    max_index_lag: timedelta,
) -> list[Alert]:
    """The past windows the late events fall in, with every event seen before this run's end."""
    late = view.late_times(window.new_since, window.end)
    if not late:
        return []
    step = rule.interval or rule.window
    oldest, newest = min(late), max(late)
    found: list[Alert] = []
    end = window.new_since  # where the previous run ended; earlier ones, a step apart
    reach = rule.window + max_index_lag
    while end.timestamp() > oldest and window.new_since - end <= reach:
        if (end - rule.window).timestamp() <= newest:
            past = Window(end - rule.window, end, end - step, seen_until=window.end)
            found.extend((await run_rule(rule, view, past, redact)).alerts)
        end -= step
    return found


__all__ = ["held_back", "held_window", "with_late_events"]
