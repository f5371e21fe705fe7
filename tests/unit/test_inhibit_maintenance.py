"""Recurrence of maintenance windows (DST, crossing midnight, cron) and inhibition semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import PermanentError
from bot.pipeline.inhibit import Inhibitor, InhibitRule, Source
from bot.pipeline.maintenance import MaintenanceWindow, cron, open_windows, parse_days, weekly
from bot.pipeline.matchers import parse_matchers
from bot.pipeline.mute import Muter, Silence


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# recurrence --------------------------------------------------------------------------------------


def test_weekly_window_in_its_time_zone() -> None:
    # Sunday 02:00-06:00 Berlin, winter (UTC+1): 01:00-05:00 UTC
    schedule = weekly("sun", "02:00", timedelta(hours=4), "Europe/Berlin")
    assert schedule.occurrence_at(utc(2026, 1, 11, 0, 59)) is None
    assert schedule.occurrence_at(utc(2026, 1, 11, 1, 0)) == (
        utc(2026, 1, 11, 1),
        utc(2026, 1, 11, 5),
    )
    assert schedule.occurrence_at(utc(2026, 1, 11, 5, 0)) is None
    assert schedule.occurrence_at(utc(2026, 1, 12, 2, 0)) is None  # Monday
    # summer (UTC+2): the same wall clock is 00:00-04:00 UTC
    assert schedule.occurrence_at(utc(2026, 7, 5, 0, 30)) == (
        utc(2026, 7, 5, 0),
        utc(2026, 7, 5, 4),
    )


def test_weekly_window_on_the_days_the_clocks_change() -> None:
    schedule = weekly("sun", "01:00", timedelta(hours=4), "Europe/Berlin")
    # 2026-03-29 the clocks go 02:00 -> 03:00: 01:00 CET to 05:00 CEST is three real hours
    assert schedule.occurrence_at(utc(2026, 3, 29, 1, 30)) == (
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 3),
    )
    assert schedule.occurrence_at(utc(2026, 3, 29, 3, 0)) is None
    # 2026-10-25 the clocks go 03:00 -> 02:00: 01:00 CEST to 05:00 CET is five real hours
    assert schedule.occurrence_at(utc(2026, 10, 25, 3, 30)) == (
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 4),
    )


def test_start_in_the_skipped_hour_starts_after_the_gap() -> None:
    schedule = weekly("sun", "02:30", timedelta(hours=1), "Europe/Berlin")
    start, end = schedule.occurrence_at(utc(2026, 3, 29, 1, 45)) or (None, None)
    assert start == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert end == utc(2026, 3, 29, 2, 30)  # 04:30 CEST: still an hour


def test_weekly_window_crossing_midnight_belongs_to_its_start_day() -> None:
    schedule = weekly("sat", "22:00", timedelta(hours=6), "UTC")
    assert schedule.occurrence_at(utc(2026, 1, 11, 3, 59)) == (
        utc(2026, 1, 10, 22),
        utc(2026, 1, 11, 4),
    )
    assert schedule.occurrence_at(utc(2026, 1, 11, 4, 0)) is None
    assert schedule.occurrence_at(utc(2026, 1, 11, 22, 30)) is None  # Sunday night: not listed
    assert schedule.next_start(utc(2026, 1, 11, 4)) == utc(2026, 1, 17, 22)


def test_cron_window_with_a_duration() -> None:
    # weekdays 23:30 New York for 90 minutes, across midnight
    schedule = cron("30 23 * * mon-fri", timedelta(minutes=90), "America/New_York")
    # Friday 2026-01-09 23:30 EST = Saturday 04:30 UTC
    assert schedule.occurrence_at(utc(2026, 1, 10, 5, 59)) == (
        utc(2026, 1, 10, 4, 30),
        utc(2026, 1, 10, 6),
    )
    assert schedule.occurrence_at(utc(2026, 1, 10, 6, 0)) is None
    assert schedule.occurrence_at(utc(2026, 1, 11, 5, 0)) is None  # Saturday night
    assert schedule.next_start(utc(2026, 1, 10, 6)) == utc(2026, 1, 13, 4, 30)  # Monday


def test_cron_window_across_a_clock_change_ends_on_the_wall_clock() -> None:
    # daily 01:00 for 3h New York; 2026-03-08 the clocks go 02:00 -> 03:00
    schedule = cron("0 1 * * *", timedelta(hours=3), "America/New_York")
    assert schedule.occurrence_at(utc(2026, 3, 8, 7, 30)) == (
        utc(2026, 3, 8, 6),
        utc(2026, 3, 8, 8),
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: weekly("sun", "25:00", timedelta(hours=1), "UTC"), "bad start time"),
        (lambda: weekly("sundae", "02:00", timedelta(hours=1), "UTC"), "bad day"),
        (lambda: weekly("sun", "02:00", timedelta(hours=1), "Mars/Olympus"), "unknown time zone"),
        (lambda: weekly("sun", "02:00", timedelta(days=8), "UTC"), "between 1m and 7d"),
        (lambda: cron("0 25 * * *", timedelta(hours=1), "UTC"), "bad cron expression"),
    ],
)
def test_bad_schedules_say_what_is_wrong(build: object, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        build()  # type: ignore[operator]


def test_day_ranges() -> None:
    assert parse_days("mon-fri") == ("mon", "tue", "wed", "thu", "fri")
    assert parse_days("fri-mon") == ("mon", "fri", "sat", "sun")
    assert parse_days("Sunday,sat") == ("sat", "sun")
    assert parse_days("daily") == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# the muter ---------------------------------------------------------------------------------------


def window(include_critical: bool = False) -> MaintenanceWindow:
    return MaintenanceWindow(
        1,
        "sunday-patching",
        weekly("sun", "02:00", timedelta(hours=4), "Europe/Berlin"),
        parse_matchers(["service=db*"]),
        include_critical=include_critical,
        reason="OS patches",
    )


def test_a_window_mutes_matching_incidents_but_not_critical_ones() -> None:
    now = utc(2026, 1, 11, 2)
    muter = Muter(windows=open_windows([window()], now))
    mute = muter.mute({"service": "db-main", "severity": "high"}, now)
    assert mute is not None and mute.muted_by == "maintenance:sunday-patching"
    assert "in maintenance window 'sunday-patching' until 06:00 (Europe/Berlin)" in mute.note
    assert muter.mute({"service": "db-main", "severity": "critical"}, now) is None
    assert muter.mute({"service": "web", "severity": "high"}, now) is None
    crit = Muter(windows=open_windows([window(include_critical=True)], now))
    assert crit.mute({"service": "db-main", "severity": "critical"}, now) is not None
    assert open_windows([window()], utc(2026, 1, 11, 6)) == []


def test_a_silence_wins_over_a_window() -> None:
    now = utc(2026, 1, 11, 2)
    silence = Silence(7, parse_matchers(["service=db*"]), now, now + timedelta(hours=1), "x", "a")
    mute = Muter([silence], open_windows([window()], now)).mute({"service": "db"}, now)
    assert mute is not None and mute.muted_by == "silence:7"


# inhibition ------------------------------------------------------------------------------------

HOST_DOWN = InhibitRule(
    source=parse_matchers(["rule=host-down"]),
    target=parse_matchers(["severity!=critical"]),
    equal=("host",),
)


def test_an_active_source_inhibits_targets_with_the_same_equal_labels() -> None:
    inhibitor = Inhibitor(
        [HOST_DOWN], [Source(1, {"rule": "host-down", "host": "db-1", "severity": "critical"})]
    )
    found = inhibitor.mutes({"rule": "db-slow", "host": "db-1", "severity": "high"}, 2)
    assert found is not None and found.source.incident_id == 1
    assert "inhibited by INC-1 host-down (host=db-1)" in found.note
    assert inhibitor.mutes({"rule": "db-slow", "host": "db-2", "severity": "high"}, 3) is None
    # the target matchers decide: a critical alert on the host is not inhibited
    assert inhibitor.mutes({"rule": "db-down", "host": "db-1", "severity": "critical"}, 4) is None


def test_no_sources_nothing_inhibited() -> None:
    assert Inhibitor([HOST_DOWN]).mutes({"host": "db-1", "severity": "low"}) is None
    assert not Inhibitor([])


def test_equal_labels_missing_on_both_sides_count_as_equal() -> None:
    rule = InhibitRule(
        parse_matchers(["rule=dc-down"]), parse_matchers(["severity=low"]), ("zone",)
    )
    inhibitor = Inhibitor([rule], [Source(1, {"rule": "dc-down"})])
    assert inhibitor.mutes({"severity": "low"}) is not None
    assert inhibitor.mutes({"severity": "low", "zone": "a"}) is None


def test_a_target_that_matches_the_source_is_not_inhibited_by_itself() -> None:
    rule = InhibitRule(parse_matchers(["alertname=x"]), parse_matchers(["alertname=x"]), ("host",))
    labels = {"alertname": "x", "host": "h"}
    inhibitor = Inhibitor([rule], [Source(1, labels), Source(2, labels)])
    assert inhibitor.mutes(labels, 1) is None
    assert inhibitor.mutes(labels, 2) is None


def test_two_sided_target_is_inhibited_by_a_one_sided_source() -> None:
    rule = InhibitRule(
        parse_matchers(["severity=*"]), parse_matchers(["severity=warning"]), ("host",)
    )
    warning = {"severity": "warning", "host": "h"}
    inhibitor = Inhibitor([rule], [Source(1, warning)])
    assert inhibitor.mutes(warning, 5) is None  # the only source matches the target too
    inhibitor.observe([Source(2, {"severity": "critical", "host": "h"})])
    found = inhibitor.mutes(warning, 5)
    assert found is not None and found.source.incident_id == 2
