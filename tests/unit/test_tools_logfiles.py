"""Plain log files read by the rule tools: event boundaries, times and hosts per sourcetype."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import ConfigError
from detectors.tools.logfiles import LogOptions, is_plain_log, read_log

LOGS = Path(__file__).parents[1] / "fixtures" / "logs"


def write(tmp_path: Path, text: str, name: str = "x.log") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_syslog_lines_take_the_given_year_and_the_host_they_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Nov 22 09:13:31 bastion-1 sshd[20393]: Failed password for root from 185.219.97.48 "
        "port 48622 ssh2\nNov  2 23:59:59 bastion-2 CRON[1]: done\n",
    )

    first, second = read_log(path, LogOptions("linux_secure", "os", year=2025))

    assert first.time == datetime(2025, 11, 22, 9, 13, 31, tzinfo=UTC)
    assert (first.host, first.index, first.sourcetype) == ("bastion-1", "os", "linux_secure")
    assert second.time == datetime(2025, 11, 2, 23, 59, 59, tzinfo=UTC)
    assert second.host == "bastion-2"


def test_without_a_year_the_files_date_gives_it_and_december_rolls_into_january(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "Dec 31 23:59:58 h a: one\nJan  1 00:00:02 h a: two\n")
    os.utime(path, (datetime(2027, 1, 1, 1, tzinfo=UTC).timestamp(),) * 2)

    one, two = read_log(path, LogOptions("syslog", host="given"))

    assert one.time == datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert two.time == datetime(2027, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert one.host == two.host == "given"


def test_windows_classic_events_span_lines_and_xml_events_read_their_time() -> None:
    classic = read_log(
        LOGS / "windows" / "4625-guessing.classic.log", LogOptions("WinEventLog:Security")
    )
    xml = read_log(LOGS / "windows" / "4625-guessing.xml.log", LogOptions("XmlWinEventLog"))

    assert len(classic) == len(xml) == 123
    assert classic[1].raw.startswith("11/22/2026 09:00:02 AM\nLogName=Security\nEventCode=4625")
    assert "Source Network Address:" in classic[1].raw
    assert classic[1].time == datetime(2026, 11, 22, 9, 0, 2, tzinfo=UTC)
    assert xml[0].time == datetime(2026, 11, 22, 9, 0, 0, 509051, tzinfo=UTC)
    assert classic[0].host == xml[0].host == "DC01.corp.example.com"


def test_access_and_error_logs_and_cloudtrail_records() -> None:
    (access, *_) = read_log(LOGS / "web" / "nginx-5xx-burst.log", LogOptions("nginx:access"))
    (error, *_) = read_log(LOGS / "web" / "apache-error.log", LogOptions("apache:error"))
    records = read_log(
        LOGS / "cloudtrail" / "access-denied-probe.json", LogOptions("aws:cloudtrail", "aws")
    )

    assert access.time == datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC)
    assert access.host == "nginx-5xx-burst"  # no --host: the file's name
    assert error.time == datetime(2026, 11, 22, 9, 12, 5, 375951, tzinfo=UTC)
    assert len(records) == 118
    assert json.loads(records[0].raw)["eventTime"] == "2026-11-22T09:00:27Z"


def test_a_line_without_a_time_is_named_with_the_format_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "Nov 22 09:00:01 h sshd[1]: ok\n    continued text\n")

    with pytest.raises(ConfigError) as caught:
        read_log(path, LogOptions("linux_secure"))

    assert str(caught.value) == (
        f"{path}:2: no time at the start of the event "
        "(expected a syslog time like 'Nov 22 09:00:01' or ISO 8601)"
    )


def test_plain_logs_are_told_from_the_events_format(tmp_path: Path) -> None:
    events = write(tmp_path, json.dumps({"time": 1, "raw": "x"}) + "\n", "e.jsonl")
    app = write(tmp_path, json.dumps({"@timestamp": "2026-11-22T09:00:00Z"}) + "\n", "a.jsonl")

    assert not is_plain_log(events)
    assert is_plain_log(app)
    assert is_plain_log(LOGS / "linux_secure" / "pam-normal.log")
