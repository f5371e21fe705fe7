"""The windows a rule's next run must search (pure: the runner records what it searched)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from detectors.model import Rule
from detectors.window import Window


def plan_windows(
    now: datetime,
    last_end: datetime | None,
    rule: Rule,
    sliding: bool,
    index_lag: timedelta | None = None,
    end: datetime | None = None,
) -> tuple[list[Window], timedelta]:
    """The windows the next run must search, and how much data was given up (past catch-up).

    With ``index_lag`` the windows are bounded by index time: each covers the events indexed
    since the previous window's end (``Window.index_since``) and reaches ``index_lag`` further
    back in event time, so an event indexed up to that late is still found, and new, once.
    ``end``, when given, is where the rule's data ends (its feed's index-time cursor).
    Index-time bounds fall on whole seconds, as Splunk's ``_indextime`` does."""
    if end is None:  # else the rule's feed says how far its data goes
        end = now - rule.query_delay
    if index_lag is not None:  # Splunk keeps index times in whole seconds
        end = end.replace(microsecond=0)
    if last_end is None:
        start = end - rule.window
        first = Window(start=start, end=end, new_since=start)
        if index_lag is not None:
            first = replace(first, index_since=start)
        return [first], timedelta(0)
    if end <= last_end:
        return [], timedelta(0)
    step = rule.interval or rule.window
    # max_catchup bounds what an outage replays; a run merely late (the scheduler's jitter, a
    # slow search) never gives data up, whatever max_catchup says
    cursor = max(last_end, end - max(rule.max_catchup, 2 * step))
    skipped = cursor - last_end
    steps = max(1, round((end - cursor) / step))
    size = (end - cursor) / steps
    windows = []
    for i in range(steps):
        new_since = cursor + size * i
        stop = end if i == steps - 1 else cursor + size * (i + 1)
        start = min(stop - rule.window if sliding else new_since, new_since)
        if index_lag is None:
            windows.append(Window(start=start, end=stop, new_since=new_since))
        else:
            windows.append(
                Window(
                    start=start - index_lag, end=stop, new_since=new_since, index_since=new_since
                )
            )
    return windows, skipped


__all__ = ["plan_windows"]
