"""The time span one rule run looks at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.hits import Hit


@dataclass(frozen=True, slots=True)
class Window:
    """Search ``[start, end)``; events with ``time < new_since`` were already seen by the previous
    run (``new_since`` is where that run ended, or ``start`` for a first run).

    ``index_since`` is set when the run is bounded by index time (docs/rules.md, "Late data and
    search cost"): the search returns only events indexed before ``end``, and an event is new
    when it was indexed at or after ``index_since`` (where the previous run's index-time bound
    ended), whatever its timestamp. Rows without an index time (aggregates) fall back to
    ``new_since``.

    ``seen_until`` is set when the window is evaluated with every event indexed before
    ``seen_until``, not only those indexed before its own end: a run revisiting a past window
    because events late for it have arrived (``seen_until`` is the current run's end), or a
    window held back by the measured indexing lag (``seen_until`` is where its feed's data
    ends)."""

    start: datetime
    end: datetime
    new_since: datetime
    index_since: datetime | None = None
    seen_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    @classmethod
    def sliding(cls, end: datetime, length: timedelta, previous_end: datetime | None) -> Window:
        """The window of a sliding rule: ``length`` back from ``end``."""
        start = end - length
        return cls(start=start, end=end, new_since=start if previous_end is None else previous_end)

    def is_new(self, hit: Hit) -> bool:
        """Whether the previous run could not have seen ``hit``."""
        if self.index_since is not None and hit.indexed is not None:
            return hit.indexed >= self.index_since
        return hit.time >= self.new_since
