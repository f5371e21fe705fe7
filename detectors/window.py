"""The time span one rule run looks at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Window:
    """Search ``[start, end)``; events with ``time < new_since`` were already seen by the previous
    run (``new_since`` is where that run ended, or ``start`` for a first run)."""

    start: datetime
    end: datetime
    new_since: datetime

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    @classmethod
    def sliding(cls, end: datetime, length: timedelta, previous_end: datetime | None) -> Window:
        """The window of a sliding rule: ``length`` back from ``end``."""
        start = end - length
        return cls(start=start, end=end, new_since=start if previous_end is None else previous_end)
