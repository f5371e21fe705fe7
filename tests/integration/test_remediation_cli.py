"""``run_bot.py incidents auto-resolve | runs`` as a person types them, against the database a
bot on its embedded default wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.remediation_env import embedded

ROOT = Path(__file__).resolve().parents[2]


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SPLUNK_"))}
    env.update(
        BOT_DATABASE_URL=f"sqlite:///{folder / 'bot.db'}",
        BOT_LOCAL_EVENTS_PATH=str(folder / "events.db"),
        BOT_GENERATOR="false",
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_the_cli_shows_the_plan_starts_it_with_yes_and_lists_runs(tmp_path: Path) -> None:
    async with embedded(tmp_path) as env:
        incident = await env.fire()
    name = f"INC-{incident}"
    dry = cli(tmp_path, "incidents", "auto-resolve", name, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{name}: demo-restart-upstream" in dry.stdout
    assert "confidence 0.95" in dry.stdout and "gate: run" in dry.stdout
    assert "[ok] kill_switch: kill switch is off" in dry.stdout

    unconfirmed = cli(tmp_path, "incidents", "auto-resolve", name)
    assert unconfirmed.returncode != 0 and "confirm with --yes" in unconfirmed.stderr

    started = cli(tmp_path, "incidents", "auto-resolve", name, "--yes")
    assert started.returncode == 0, started.stderr
    assert "run 1: demo-restart-upstream on service:checkout verifying" in started.stdout

    listed = cli(tmp_path, "incidents", "runs", name)
    assert "run 1: demo-restart-upstream" in listed.stdout and "1 runs" in listed.stdout
