"""A real bot: ``run_bot.py run`` in a subprocess, on a database, events file and port of its own.

The bot runs one fast rule (the shipped ``web-5xx-burst`` rule, searched every 2 seconds) and no
background generator, so incidents appear only when a test injects a scenario with
``run_bot.py simulate``. Its output goes to a log file that failures print.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUN_BOT = ROOT / "run_bot.py"
SHIPPED_WEB_RULES = ROOT / "detectors" / "content" / "web.yaml"
FAST_RULE_ID = "web-5xx-burst"
READY_TIMEOUT_S = 30.0
INCIDENT_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_fast_rules(folder: Path) -> Path:
    """The shipped web-5xx-burst rule, unchanged but for a 2-second interval."""
    shipped = yaml.safe_load(SHIPPED_WEB_RULES.read_text())
    rule = next(r for r in shipped["rules"] if r["id"] == FAST_RULE_ID)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fast.yaml").write_text(yaml.safe_dump({"rules": [{**rule, "interval": "2s"}]}))
    return folder


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``BOT_…`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``run_bot.py ARGS`` to completion, with its output as text."""
    return subprocess.run(
        [sys.executable, str(RUN_BOT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class BotProcess:
    url: str
    env: dict[str, str]
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.url, timeout=10.0)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``run_bot.py ARGS`` with this bot's settings (plus ``env``)."""
        return run_cli(*args, env={**self.env, **env}, cwd=self.workdir)

    def simulate(self, scenario: str) -> str:
        """``run_bot.py simulate SCENARIO`` against this bot; returns what it printed."""
        done = self.cli("simulate", scenario)
        if done.returncode != 0:
            pytest.fail(
                f"simulate {scenario} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}\n--- bot output ---\n{self.output()}"
            )
        return done.stdout

    def wait_for(
        self, probe: Callable[[], T | None], what: str, timeout: float = INCIDENT_TIMEOUT_S
    ) -> T:
        """Call ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"the bot exited ({self.process.returncode}) while waiting for {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout:.0f}s\n--- bot output ---\n{self.output()}")
            time.sleep(0.2)

    def incidents(self) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/incidents")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def detail(self, incident_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/incidents/{incident_id}")
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    def first_incident(self) -> dict[str, Any]:
        """Wait for the bot's first incident and return it."""
        return self.wait_for(lambda: next(iter(self.incidents()), None), "incident")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited within 10 s; returns the exit code."""
        self.api.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        return self.process.returncode


def bot_settings(workdir: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "BOT_DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
        "BOT_LOCAL_EVENTS_PATH": str(workdir / "events.db"),
        "BOT_HTTP_HOST": "127.0.0.1",
        "BOT_HTTP_PORT": str(port),
        "BOT_GENERATOR": "false",
        "BOT_SHIPPED_RULES": "false",
        "BOT_RULES_PATH": str(write_fast_rules(workdir / "rules")),
        "BOT_SCHEDULE_JITTER": "0s",
        **extra,
    }


@contextmanager
def running_bot(workdir: Path, **extra: str) -> Iterator[BotProcess]:
    """Start ``run_bot.py run`` in ``workdir``, wait until ``/ready`` answers 200, and stop it
    afterwards (SIGTERM, then SIGKILL). ``extra`` adds or overrides ``BOT_…`` settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = clean_env(**bot_settings(workdir, port, **extra))
    log_path = workdir / "bot.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(RUN_BOT), "run"],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    bot = BotProcess(f"http://127.0.0.1:{port}", env, workdir, log_path, process)
    try:
        _wait_ready(bot)
        yield bot
    finally:
        bot.stop()


def _wait_ready(bot: BotProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if bot.process.poll() is not None:
            pytest.fail(
                f"run_bot.py run exited with {bot.process.returncode} before it was ready\n"
                f"--- bot output ---\n{bot.output()}"
            )
        try:
            response = bot.api.get("/ready", timeout=2.0)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        time.sleep(0.1)
    pytest.fail(
        f"/ready did not answer 200 within {READY_TIMEOUT_S:.0f}s (last: {last})\n"
        f"--- bot output ---\n{bot.output()}"
    )
