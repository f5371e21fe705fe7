"""``run_bot.py maintenance add | list | remove`` as a person types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SPLUNK_"))}
    env.update(
        BOT_DATABASE_URL=f"sqlite:///{folder / 'bot.db'}",
        BOT_LOCAL_EVENTS_PATH=str(folder / "events.db"),
        BOT_GENERATOR="false",
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "maintenance", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_add_list_remove(tmp_path: Path) -> None:
    added = cli(
        tmp_path,
        "add",
        "sunday-patching",
        "--days",
        "sun",
        "--start",
        "02:00",
        "--duration",
        "4h",
        "--timezone",
        "Europe/Berlin",
        "--match",
        "service=db*",
        "--match",
        "host!=db-9",
        "--reason",
        "OS patches",
        "--actor",
        "cli:ops",
    )
    assert added.returncode == 0, added.stderr
    assert (
        "sunday-patching: sun 02:00 for 4h (Europe/Berlin) · service=db* host!=db-9" in added.stdout
    )
    nightly = cli(
        tmp_path,
        "add",
        "nightly",
        "--cron",
        "30 1 * * *",
        "--duration",
        "45m",
        "--match",
        "host=db-1",
    )
    assert nightly.returncode == 0, nightly.stderr
    listed = cli(tmp_path, "list", "--json")
    windows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(w["name"], w["kind"], w["created_by"]) for w in windows] == [
        ("nightly", "cron", windows[0]["created_by"]),
        ("sunday-patching", "weekly", "cli:ops"),
    ]
    assert windows[1]["matchers"] == ["service=db*", "host!=db-9"]
    removed = cli(tmp_path, "remove", "nightly")
    assert removed.returncode == 0 and "removed maintenance window 'nightly'" in removed.stdout
    assert "nightly" not in cli(tmp_path, "list").stdout
    missing = cli(tmp_path, "remove", "nightly")
    assert missing.returncode == 1 and "no maintenance window 'nightly'" in missing.stderr


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    bad = cli(tmp_path, "add", "x", "--cron", "0 25 * * *", "--duration", "1h", "--match", "a=b")
    assert bad.returncode == 1 and "bad cron expression '0 25 * * *'" in bad.stderr
    zone = cli(
        tmp_path,
        "add",
        "x",
        "--days",
        "sun",
        "--start",
        "02:00",
        "--duration",
        "1h",
        "--timezone",
        "Berlin",
        "--match",
        "a=b",
    )
    assert zone.returncode == 1 and "unknown time zone 'Berlin'" in zone.stderr
