"""Maintenance windows: recurring silences (a weekly schedule or a cron expression, a duration,
a time zone, label matchers).

A window's occurrences are computed in its time zone's wall clock: "Sunday 02:00 for 4h" in
Europe/Berlin runs 02:00-06:00 local time on every Sunday, also on the Sundays when the clocks
change (that occurrence then lasts 3 or 5 real hours). A start time that does not exist on the
day the clocks go forward (02:30 in the skipped hour) starts when the clock reads the same
offset past the gap (03:30). A window never mutes a critical incident unless it says
``include_critical``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.domain.durations import format_duration
from bot.errors import PermanentError
from bot.pipeline.matchers import Matcher

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DURATION = timedelta(days=7)
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class ScheduleKind(StrEnum):
    WEEKLY = "weekly"
    CRON = "cron"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a window recurs: ``days`` + ``start`` (weekly) or ``cron``, for ``duration``."""

    kind: ScheduleKind
    duration: timedelta
    timezone: str
    days: tuple[str, ...] = ()
    start: time = time(0)
    cron: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        length = format_duration(self.duration)
        if self.kind is ScheduleKind.CRON:
            return f"cron '{self.cron}' for {length} ({self.timezone})"
        days = ",".join(self.days)
        return f"{days} {self.start:%H:%M} for {length} ({self.timezone})"

    def occurrence_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence ``now`` falls in, as (start, end) in UTC; None outside every one."""
        if self.kind is ScheduleKind.CRON:
            return self._cron_occurrence(now)
        return self._weekly_occurrence(now)

    def next_start(self, now: datetime) -> datetime:
        """The first occurrence starting after ``now`` (UTC)."""
        if self.kind is ScheduleKind.CRON:
            trigger = CronTrigger.from_crontab(self.cron, timezone=self.zone)
            found = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
            assert found is not None
            return found.astimezone(UTC)
        local = now.astimezone(self.zone).date()
        for offset in range(0, 9):
            start, _ = self._span(local + timedelta(days=offset))
            if start > now and DAYS[(local + timedelta(days=offset)).weekday()] in self.days:
                return start
        raise AssertionError("a weekly schedule has at least one day")

    def _span(self, day: date) -> tuple[datetime, datetime]:
        local_start = datetime.combine(day, self.start, tzinfo=self.zone)
        return _wall_span(local_start, self.duration, self.zone)

    def _weekly_occurrence(self, now: datetime) -> tuple[datetime, datetime] | None:
        local = now.astimezone(self.zone).date()
        reach = self.duration.days + 2  # an occurrence that began days ago may still run
        for back in range(reach, -1, -1):
            day = local - timedelta(days=back)
            if DAYS[day.weekday()] not in self.days:
                continue
            start, end = self._span(day)
            if start <= now < end:
                return start, end
        return None

    def _cron_occurrence(self, now: datetime) -> tuple[datetime, datetime] | None:
        trigger = CronTrigger.from_crontab(self.cron, timezone=self.zone)
        # the latest start not after now: walk from the earliest start that could still run
        found: tuple[datetime, datetime] | None = None
        probe = now - self.duration - timedelta(hours=3)  # 3h: the widest DST shift
        for _ in range(10_000):
            fire = trigger.get_next_fire_time(None, probe)
            if fire is None or fire > now:
                break
            start, end = _wall_span(fire.astimezone(self.zone), self.duration, self.zone)
            if start <= now < end:
                found = (start, end)
            probe = fire + timedelta(seconds=1)
        return found


def _wall_span(
    local_start: datetime, duration: timedelta, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """Start and end in UTC, the end ``duration`` later on the wall clock of ``zone``."""
    start = local_start.astimezone(UTC)
    # a start in the hour the clocks skip is read past the gap (02:30 -> 03:30)
    end = start.astimezone(zone).replace(tzinfo=None) + duration
    return start, end.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    id: int
    name: str
    schedule: Schedule
    matchers: tuple[Matcher, ...]
    include_critical: bool = False
    reason: str = ""
    created_by: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if not self.include_critical and labels.get("severity", "").lower() == "critical":
            return False
        return all(m.matches(labels) for m in self.matchers)

    def note(self, end: datetime) -> str:
        """ "in maintenance window 'sunday-patching' until 06:00 (Europe/Berlin)"."""
        local = end.astimezone(self.schedule.zone)
        return f"in maintenance window '{self.name}' until {local:%H:%M} ({self.schedule.timezone})"


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """A window in one of its occurrences right now: what the muter checks per incident."""

    window: MaintenanceWindow
    start: datetime
    end: datetime

    @property
    def muted_by(self) -> str:
        return f"maintenance:{self.window.name}"[:64]

    @property
    def note(self) -> str:
        return self.window.note(self.end)


def open_windows(windows: Sequence[MaintenanceWindow], now: datetime) -> list[OpenWindow]:
    """The windows running at ``now``: computed once per run, not once per incident."""
    out = []
    for window in windows:
        span = window.schedule.occurrence_at(now)
        if span is not None:
            out.append(OpenWindow(window, *span))
    return out


# parsing ---------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise PermanentError(
            f"bad window name {name!r}: lower-case letters, digits, '-', '_' or '.', up to 64"
        )
    return name


def parse_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PermanentError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
        ) from None
    return name


def parse_days(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"sat,sun"``, ``"mon-fri"``, ``"daily"`` or a list of day names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    days: list[str] = []
    for item in (i.strip().lower() for i in items if i.strip()):
        if item in ("daily", "*"):
            days.extend(DAYS)
        elif "-" in item:
            first, _, last = item.partition("-")
            days.extend(_day_range(first.strip()[:3], last.strip()[:3]))
        elif item in DAYS or item in _FULL_DAYS:
            days.append(item[:3])
        else:
            raise PermanentError(f"bad day {item!r}: use mon..sun, a range mon-fri, or daily")
    if not days:
        raise PermanentError("a weekly window needs at least one day, for example sun")
    return tuple(d for d in DAYS if d in days)


def _day_range(first: str, last: str) -> list[str]:
    if first not in DAYS or last not in DAYS:
        raise PermanentError(f"bad day range {first}-{last}: use mon-fri")
    i, j = DAYS.index(first), DAYS.index(last)
    return [DAYS[(i + k) % 7] for k in range((j - i) % 7 + 1)]


def parse_start(text: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise PermanentError(f"bad start time {text!r}: use HH:MM, for example 02:00")
    return time(int(match[1]), int(match[2]))


def parse_cron(expression: str, zone: str) -> str:
    expression = " ".join(expression.split())
    try:
        CronTrigger.from_crontab(expression, timezone=ZoneInfo(zone))
    except ValueError as exc:
        raise PermanentError(f"bad cron expression {expression!r}: {exc}") from None
    return expression


def check_duration(duration: timedelta) -> timedelta:
    if not timedelta(minutes=1) <= duration <= MAX_DURATION:
        raise PermanentError("a maintenance window lasts between 1m and 7d")
    return duration


def weekly(days: str | Sequence[str], start: str, duration: timedelta, zone: str) -> Schedule:
    return Schedule(
        ScheduleKind.WEEKLY,
        check_duration(duration),
        parse_zone(zone),
        days=parse_days(days),
        start=parse_start(start),
    )


def cron(expression: str, duration: timedelta, zone: str) -> Schedule:
    zone = parse_zone(zone)
    return Schedule(
        ScheduleKind.CRON, check_duration(duration), zone, cron=parse_cron(expression, zone)
    )


__all__ = [
    "DAYS",
    "MaintenanceWindow",
    "OpenWindow",
    "Schedule",
    "ScheduleKind",
    "check_name",
    "cron",
    "open_windows",
    "weekly",
]
