"""The whole loop against a real ``run_bot.py`` process: a scenario is injected, the rule fires,
an incident opens with a root cause, and people work it over HTTP and from the CLI."""

from __future__ import annotations

import contextlib
import getpass
import re
import signal
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.botprocess import BotProcess, clean_env, free_port, run_cli, running_bot

pytestmark = pytest.mark.e2e

TITLE = "HTTP 5xx burst on checkout"
# uvicorn shuts down gracefully, then re-raises the signal it caught
STOPPED_BY_SIGTERM = (0, -signal.SIGTERM)


def _ack(bot: BotProcess, incident_id: str, key: str, **headers: str) -> dict:
    response = bot.api.post(
        f"/api/v1/incidents/{incident_id}/commands",
        json={"command": "acknowledge"},
        headers={"Idempotency-Key": key, **headers},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_simulated_burst_opens_an_incident_that_is_acknowledged_once(bot: BotProcess) -> None:
    printed = bot.simulate("web-5xx-burst")
    assert f"into the bot at {bot.url}" in printed

    incident = bot.first_incident()
    assert incident["title"] == TITLE
    assert incident["severity"] == "high"
    assert incident["state"] == "open"
    assert incident["service"] == "checkout"
    assert incident["hit_count"] >= 20  # the rule's threshold
    inc = incident["id"]

    first = _ack(bot, inc, "ack-from-test-1")
    assert first["duplicate"] is False
    assert first["incident"]["state"] == "acknowledged"
    assert first["message"] == "acknowledged by console:local"

    again = _ack(bot, inc, "ack-from-test-1")
    assert again["duplicate"] is True
    assert again["incident"]["state"] == "acknowledged"
    assert again["incident"]["version"] == first["incident"]["version"]

    detail = bot.detail(inc)
    assert detail["state"] == "acknowledged"
    assert detail["state_changed_by"] == "console:local"
    acks = [t for t in detail["timeline"] if t["kind"] == "acknowledge"]
    assert [(t["actor"], t["surface"], t["text"]) for t in acks] == [
        ("console:local", "api", "acknowledged by console:local")
    ]
    audit = [a for a in detail["audit"] if a["action"] == "acknowledge"]
    assert [(a["actor"], a["surface"], a["before"], a["after"], a["result"]) for a in audit] == [
        ("console:local", "api", "open", "acknowledged", "applied")
    ]

    detail = bot.wait_for(
        lambda: (d := bot.detail(inc))["rca"] and d, "root-cause analysis", timeout=10
    )
    rca = detail["rca"]
    assert rca["status"] == "ok"
    assert rca["summary"]
    assert rca["causes"]
    evidence_ids = {e["id"] for e in detail["evidence"]}
    assert evidence_ids
    for cause in rca["causes"]:
        assert cause["evidence_ids"], cause
        assert set(cause["evidence_ids"]) <= evidence_ids, cause
    cited = {eid for cause in rca["causes"] for eid in cause["evidence_ids"]}
    cited_lines = [e["text"] for e in detail["evidence"] if e["id"] in cited]
    assert all("service=checkout" in line and "status=50" in line for line in cited_lines)


def test_the_cli_works_the_same_incident_and_viewers_are_refused(tmp_path: Path) -> None:
    user = getpass.getuser()
    roles = tmp_path / "roles.yaml"
    roles.write_text(
        f"default_role: viewer\nroles:\n  admin: [console:local, 'console:{user}', 'cli:{user}']\n"
    )
    with running_bot(tmp_path / "bot", BOT_ROLES_FILE=str(roles)) as bot:
        bot.simulate("web-5xx-burst")
        inc = bot.first_incident()["id"]

        listed = bot.cli("incidents", "list")
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if inc in line)
        assert "high" in row and "open" in row and TITLE in row
        assert "1 of 1 incidents" in listed.stdout

        now = datetime.now(UTC)
        suppressed = bot.cli("incidents", "suppress", inc, "1h", "maintenance", "window")
        assert suppressed.returncode == 0, suppressed.stderr
        assert f"suppressed by cli:{user}" in suppressed.stdout
        assert "maintenance window" in suppressed.stdout
        detail = bot.detail(inc)
        assert detail["state"] == "suppressed"
        assert detail["state_changed_by"] == f"cli:{user}"
        until = datetime.fromisoformat(detail["suppressed_until"])
        assert now + timedelta(minutes=59) < until < now + timedelta(minutes=61)

        shown = bot.cli("incidents", "show", inc)
        assert shown.returncode == 0, shown.stderr
        assert f"state: suppressed (by cli:{user})" in shown.stdout
        timeline = shown.stdout.split("\ntimeline:\n", 1)[1]
        assert "opened by rule web-5xx-burst" in timeline
        assert re.search(
            rf"suppressed by cli:{re.escape(user)} until .*: maintenance window", timeline
        )

        missing = bot.cli("incidents", "ack", "INC-999")
        assert missing.returncode != 0
        assert missing.stdout == ""
        assert re.search(r"no incident (INC-)?999\b", missing.stderr), missing.stderr

        refused = bot.api.post(
            f"/api/v1/incidents/{inc}/commands",
            json={"command": "unsuppress"},
            headers={"X-Bot-User": "vic"},
        )
        assert refused.status_code == 403
        assert refused.json()["error"] == "you need the responder role (you are viewer)"
        detail = bot.detail(inc)
        assert detail["state"] == "suppressed"
        refusals = [a for a in detail["audit"] if a["actor"] == "console:vic"]
        assert [(a["action"], a["result"], a["before"], a["after"]) for a in refusals] == [
            ("unsuppress", "refused", "suppressed", "suppressed")
        ]
        assert "responder role" in refusals[0]["detail"]


def test_bad_requests_are_refused_with_a_message_and_the_bot_keeps_running(
    tmp_path: Path,
) -> None:
    with running_bot(tmp_path / "bot", BOT_MAX_BODY_BYTES="4096") as bot:
        bot.simulate("web-5xx-burst")
        inc = bot.first_incident()["id"]
        commands = f"/api/v1/incidents/{inc}/commands"

        big = bot.api.post(commands, json={"command": "comment", "text": "x" * 5000})
        assert big.status_code == 413
        assert "larger than 4096 bytes" in big.json()["error"]
        assert "BOT_MAX_BODY_BYTES" in big.json()["error"]

        broken = bot.api.post(
            commands, content=b'{"command": "ackn', headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 400
        assert "JSON" in broken.json()["error"]

        unknown_command = bot.api.post(commands, json={"command": "fly"})
        assert unknown_command.status_code == 400
        assert "acknowledge" in unknown_command.json()["error"]

        nowhere = bot.api.post("/api/v1/incidents/INC-999/commands", json={"command": "resolve"})
        assert nowhere.status_code == 404
        assert re.search(r"no incident (INC-)?999\b", nowhere.json()["error"])
        assert bot.api.get("/api/v1/incidents/INC-999").json() == {"error": "no incident INC-999"}

        illegal = bot.api.post(commands, json={"command": "unsuppress"})
        assert illegal.status_code == 409
        assert illegal.json()["error"] == f"{inc} is open, not suppressed"

        assert bot.api.get("/health").status_code == 200
        assert bot.process.poll() is None
        assert bot.detail(inc)["state"] == "open"
        works = bot.api.post(commands, json={"command": "acknowledge"})
        assert works.status_code == 200, works.text

        assert bot.stop() in STOPPED_BY_SIGTERM, bot.output()
        assert "Application shutdown complete" in bot.output()


def test_sigterm_stops_the_bot_while_a_console_is_open(bot: BotProcess) -> None:
    opened = threading.Event()

    def watch_console() -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", f"{bot.url}/events", timeout=30) as stream,
        ):
            opened.set()
            for _ in stream.iter_lines():
                pass

    viewer = threading.Thread(target=watch_console, daemon=True)
    viewer.start()
    assert opened.wait(10), "the console event stream did not open"
    bot.process.send_signal(signal.SIGTERM)
    try:
        code: int | None = bot.process.wait(timeout=8)
    except subprocess.TimeoutExpired:
        code = None
        bot.process.kill()
        bot.process.wait()
    assert code in STOPPED_BY_SIGTERM, f"exit {code} 8s after SIGTERM\n{bot.output()}"
    viewer.join(5)


def test_an_oversized_body_without_a_declared_size_is_refused_with_413(bot: BotProcess) -> None:
    def chunks():  # no Content-Length: httpx sends the body chunked
        yield b'{"command": "comment", "text": "'
        yield b"x" * 1_100_000
        yield b'"}'

    response = bot.api.post(
        "/api/v1/incidents/INC-1/commands",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "BOT_MAX_BODY_BYTES" in response.json()["error"]


BAD_RULES = """\
rules:
  - id: slow-web
    title: Slow web
    type: threshold
    query: index=web status>=500
    interval: 2 parsecs
    window: 5m
    threshold: {op: ">=", value: 20}
    severity: loud
    category: application
"""


def test_validate_prints_file_line_message_for_a_bad_rule_and_passes_shipped_content(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    bad = rules / "bad.yaml"
    bad.write_text(BAD_RULES)
    broken = rules / "broken.yaml"
    broken.write_text("rules:\n  - id: x\n    title: [unclosed\n")

    done = run_cli("validate", env=clean_env(BOT_RULES_PATH=str(rules)), cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stdout.splitlines()
    assert all(re.match(r"^.+:\d+: \S", line) for line in lines), lines
    assert any(line.startswith(f"{bad}:6: interval: ") for line in lines), lines
    assert any(line.startswith(f"{bad}:9: severity: ") and "loud" in line for line in lines)
    assert any(line.startswith(f"{broken}:") for line in lines), lines

    shipped = run_cli("validate", env=clean_env(), cwd=tmp_path)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "all files are valid" in shipped.stdout


def _run_refused(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        BOT_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        BOT_LOCAL_EVENTS_PATH=str(tmp_path / "events.db"),
        BOT_GENERATOR="false",
        **settings,
    )
    try:
        return run_cli("run", env=env, cwd=tmp_path, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run_bot.py run started with {settings} instead of refusing")


def test_a_bad_setting_stops_the_bot_with_one_line_naming_it(tmp_path: Path) -> None:
    done = _run_refused(tmp_path, BOT_HTTP_PORT="abc")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "BOT_HTTP_PORT" in lines[0] and "'abc'" in lines[0]

    exposed = _run_refused(tmp_path, BOT_HTTP_HOST="0.0.0.0", BOT_HTTP_PORT=str(free_port()))
    assert exposed.returncode != 0
    assert "BOT_CONSOLE_TOKEN" in exposed.stderr
    assert not (tmp_path / "bot.db").exists()


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = run_cli("--help", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 0
    listed = set(re.findall(r"^ {4}(\w+)", done.stdout, flags=re.MULTILINE))
    assert {"run", "validate", "simulate", "incidents"} <= listed
