"""``run_bot.py backtest``: a rule replayed over a day and more, through the real pipeline."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from detectors.rules import load_rules
from detectors.tools.backtest import run_times
from detectors.tools.commands import LONG_RANGE, _bar
from integrations.local import Event, fleet

ROOT = Path(__file__).parents[2]
DAY1 = datetime(2026, 11, 21, tzinfo=UTC)
RULE = """\
id: app-errors
title: "Errors in {service}"
type: threshold
query: index=app level=ERROR
interval: 5m
window: 5m
group_by: [service]
threshold: {op: ">=", value: 3}
severity: high
category: application
"""
# checkout bursts: A, B 50 minutes later, C hours later, D the next day; catalog once
BURSTS = [
    (DAY1 + timedelta(hours=1), "checkout"),
    (DAY1 + timedelta(hours=1, minutes=50), "checkout"),
    (DAY1 + timedelta(hours=3), "catalog"),
    (DAY1 + timedelta(hours=5), "checkout"),
    (DAY1 + timedelta(days=1, hours=2), "checkout"),
]
RANGE = ["--from", "2026-11-21T00:00:00Z", "--to", "2026-11-22T06:00:00Z"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("BOT_", "SPLUNK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOT_LOCAL_EVENTS_PATH", str(tmp_path / "events.db"))


def burst(at: datetime, service: str) -> list[Event]:
    return [
        fleet.app_log(at + timedelta(seconds=10 * i), "app-1", service, "ERROR", "boom")
        for i in range(5)
    ]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    events = [event for at, service in BURSTS for event in burst(at, service)]
    path.write_text(
        "".join(
            json.dumps({"time": e.time.isoformat(), "raw": e.raw, "index": "app", "host": e.host})
            + "\n"
            for e in events
        )
    )
    return path


def rule_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text(RULE + extra)
    return path


def backtest(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[str]]:
    code = main(["backtest", *map(str, args)])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out.splitlines()


def row(label: str, *cells: int) -> str:
    return f"{label:<30}" + "".join(f"{cell:>10}" for cell in cells)


def test_incidents_reopen_and_notifications_per_day(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = rule_file(tmp_path)

    code, lines = backtest(capsys, rules, *RANGE, "--data", data, "--resolve-quiet", "30m")

    assert code == 0
    assert lines[0] == (
        "backtest of 1 rule(s) from 2026-11-21 00:00:00 to 2026-11-22 06:00:00 UTC against "
        f"25 events from {data}"
    )
    assert lines[1] == (
        "incidents resolve after 30m without new events; reopen within 30m; silences: none"
    )
    #                          runs hits opened reopened notified muted held
    assert row("app-errors", 360, 25, 4, 1, 5, 0, 0) in lines
    assert row("2026-11-21", 287, 20, 3, 1, 4, 0, 0) in lines
    assert row("2026-11-22", 73, 5, 1, 0, 1, 0, 0) in lines
    assert row("total", 360, 25, 4, 1, 5, 0, 0) in lines
    keys = lines[lines.index("noisiest keys by incidents:") + 1 :]
    assert keys[:2] == [
        "       4  app-errors|service=checkout",
        "       1  app-errors|service=catalog",
    ]
    notified = lines[lines.index("noisiest keys by notifications:") + 1 :]
    assert notified == [
        "       4  app-errors|service=checkout",
        "       1  app-errors|service=catalog",
    ]


def test_never_resolving_keeps_one_incident_per_group(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = backtest(
        capsys, rule_file(tmp_path), *RANGE, "--data", data, "--resolve-quiet", "never"
    )

    assert code == 0
    assert lines[1].startswith("incidents are never resolved;")
    assert row("total", 360, 25, 2, 0, 2, 0, 0) in lines


def test_realert_holds_notifications_and_silences_mute_them(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = rule_file(tmp_path, "realert: 6h\n")

    _, held = backtest(capsys, rules, *RANGE, "--data", data, "--resolve-quiet", "30m")
    _, muted = backtest(
        capsys,
        rules,
        *RANGE,
        "--data",
        data,
        "--resolve-quiet",
        "30m",
        "--silence",
        "service=checkout,host=app-*",
    )

    assert row("2026-11-21", 287, 20, 3, 1, 2, 0, 2) in held  # B and C: within 6h of A
    assert row("2026-11-22", 73, 5, 1, 0, 1, 0, 0) in held  # D: a day after A
    assert "silences: service=checkout, host=app-*" in muted[1]
    assert row("total", 360, 25, 4, 1, 1, 4, 0) in muted


def test_runs_follow_the_interval_or_the_cron_schedule(tmp_path: Path) -> None:
    (every_5m,) = load_rules([rule_file(tmp_path)], include_shipped=False)
    cron = rule_file(tmp_path).with_name("cron.yaml")
    cron.write_text(RULE.replace("interval: 5m", 'schedule: "0 * * * *"') + "query_delay: 2m\n")
    (hourly,) = load_rules([cron], include_shipped=False)
    end = DAY1 + timedelta(hours=3)

    assert run_times(every_5m, DAY1, end)[:2] == [
        DAY1 + timedelta(minutes=5),
        DAY1 + timedelta(minutes=10),
    ]
    assert run_times(every_5m, DAY1, end)[-1] == end
    assert run_times(hourly, DAY1, end) == [DAY1 + timedelta(hours=h) for h in (1, 2, 3)]


def test_a_progress_bar_on_a_terminal_for_long_ranges() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        show = _bar(stream)
        for done in range(1, LONG_RANGE + 2):
            show(done, LONG_RANGE + 1)
        _bar(stream)(1, LONG_RANGE)  # short replays show nothing

    assert pipe.getvalue() == ""
    frames = terminal.getvalue().split("\r")
    assert f"] {LONG_RANGE + 1}/{LONG_RANGE + 1} runs" in terminal.getvalue()
    assert frames[1].startswith("[" + "." * 30)
    assert terminal.getvalue().endswith("\r")


def test_refuses_a_backwards_range(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["backtest", str(rule_file(tmp_path)), "--from", "now", "--to", "-1d", "--data", str(data)]
    )

    assert code == 2
    assert "--to must be after --from" in capsys.readouterr().err


def test_as_a_subprocess(tmp_path: Path, data: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SPLUNK_"))}
    command = ["backtest", rule_file(tmp_path), *RANGE, "--data", data]

    done = subprocess.run(
        [sys.executable, "run_bot.py", *map(str, command)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "incidents resolve after 1h without new events" in done.stdout
    assert done.stderr == ""  # not a terminal: no progress bar
