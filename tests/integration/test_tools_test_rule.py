"""``run_bot.py test-rule``: what a rule file would fire over a range, without creating anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from integrations.local import Event, EventStore, fleet

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RULES = """\
rules:
  - id: checkout-errors
    title: "Errors in {service}"
    type: threshold
    query: index=app level=ERROR
    window: 10m
    group_by: [service]
    threshold: {op: ">=", value: 3}
    severity: high
    category: application
    runbook: https://runbooks.example.com/checkout
  - id: quiet
    title: Never fires
    type: threshold
    query: index=app level=FATAL
    threshold: {op: ">=", value: 1}
    severity: low
    category: application
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("BOT_", "SPLUNK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOT_LOCAL_EVENTS_PATH", str(tmp_path / "events.db"))


def errors(at: datetime, count: int, service: str = "checkout") -> list[Event]:
    return [
        fleet.app_log(
            at - timedelta(seconds=10 * i),
            "app-1",
            service,
            "ERROR",
            "login failed",
            password="hunter2",
            key="AKIAIOSFODNN7EXAMPLE",
        )
        for i in range(count)
    ]


def jsonl(path: Path, events: Iterable[Event]) -> Path:
    lines = [
        json.dumps(
            {
                "time": e.time.timestamp(),
                "raw": e.raw,
                "index": e.index,
                "sourcetype": e.sourcetype,
                "host": e.host,
            }
        )
        for e in events
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["test-rule", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_groups_counts_redacted_evidence_and_the_card(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = jsonl(tmp_path / "events.jsonl", errors(NOW - timedelta(minutes=1), 4))
    to = NOW.isoformat()

    code, out, _ = run(capsys, rules, "--data", data, "--from", "2026-11-22T09:00:00Z", "--to", to)

    assert code == 0
    assert f"2 rule(s) against 4 events from {data}" in out
    assert "rule checkout-errors (threshold): Errors in {service}" in out
    assert "searched 2026-11-22 09:00:00 to 2026-11-22 10:00:00 UTC" in out
    assert "FIRES service=checkout: severity high, 4 events, value 4" in out
    assert "| [HIGH] Errors in checkout" in out
    assert "| service: checkout   host: app-1   events: 4" in out
    assert "| Runbook: https://runbooks.example.com/checkout" in out
    assert "| [Acknowledge]  [Suppress]  [Resolve]  [View]" in out
    assert "password=[REDACTED:password]" in out and "key=[REDACTED:aws-access-key]" in out
    assert "hunter2" not in out and "AKIAIOSFODNN7EXAMPLE" not in out
    assert "rule quiet (threshold): Never fires\n" in out
    assert "0 result rows; no alert" in out
    assert out.rstrip().endswith("1 of 2 rule(s) would fire (1 group(s))")
    assert not (tmp_path / "events.db").exists()  # nothing created


def test_without_from_each_rule_looks_back_its_window(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = errors(NOW - timedelta(minutes=30), 5)
    recent = errors(NOW - timedelta(minutes=2), 2)
    data = jsonl(tmp_path / "events.jsonl", old + recent)

    code, out, _ = run(capsys, rules, "--data", data, "--to", str(NOW.timestamp()))

    assert code == 0
    assert "searched 2026-11-22 09:50:00 to 2026-11-22 10:00:00 UTC" in out
    assert "2 result rows; no alert" in out


def test_relative_times_and_the_local_event_file(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    with EventStore(tmp_path / "events.db") as store:
        store.add(errors(now - timedelta(minutes=5), 3, service="catalog"))

    code, out, _ = run(capsys, rules, "--from", "-1h", "--to", "now")

    assert code == 0
    assert f"against the local event file {tmp_path / 'events.db'}" in out
    assert "FIRES service=catalog: severity high, 3 events" in out


def test_refuses_what_it_cannot_use_with_clear_messages(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, rules)
    assert code == 2
    assert f"no event file at {tmp_path / 'events.db'} (BOT_LOCAL_EVENTS_PATH)" in err
    assert not (tmp_path / "events.db").exists()

    code, _, err = run(capsys, rules, "--splunk")
    assert code == 2
    assert "SPLUNK_HOST: required" in err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": "soon", "raw": "x"}\n\n{"raw": "y", "colour": 1}\nnot json\n')
    code, _, err = run(capsys, rules, "--data", bad)
    assert code == 2
    assert err.splitlines() == [
        f"configuration error: {bad}:1: time: not a time: 'soon'",
        f"{bad}:3: time: Field required",
        f"{bad}:3: colour: unknown key",
        f"{bad}:4: not JSON: Expecting value",
    ]

    code, _, err = run(capsys, rules, "--data", bad, "--from", "yesterday")
    assert code == 2
    assert "--from: 'yesterday' is not a time" in err


def test_a_query_only_splunk_can_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    splunk_only = RULES.replace("level=FATAL", "level=FATAL | transaction host maxspan=5m")
    path = tmp_path / "splunk.yaml"
    path.write_text(splunk_only)
    data = jsonl(tmp_path / "events.jsonl", errors(NOW, 1))

    code, _, err = run(capsys, path, "--data", data)

    assert code == 2
    assert f"{path}:15: query: unsupported command 'transaction'" in err


def test_as_a_subprocess(tmp_path: Path, rules: Path) -> None:
    data = jsonl(tmp_path / "events.jsonl", errors(NOW - timedelta(minutes=1), 3))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SPLUNK_"))}

    done = subprocess.run(
        [sys.executable, "run_bot.py", "test-rule", rules, "--data", data, "--to", NOW.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "FIRES service=checkout: severity high, 3 events" in done.stdout
    assert textwrap.dedent(done.stderr) == ""


def test_a_users_own_extractions_give_the_rule_its_group_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # orders.log has no key=value pairs: only the user's extraction yields `customer`
    (tmp_path / "props.yaml").write_text(
        "myapp:log:\n  - 'order (?<order_id>\\d+) for (?<customer>\\S+) failed'\n"
    )
    monkeypatch.setenv("BOT_FIELD_EXTRACTIONS_PATH", str(tmp_path / "props.yaml"))
    events = [
        Event(
            NOW - timedelta(seconds=5 * i + 5),
            f"order {i} for acme failed",
            "app",
            "myapp:log",
            "a1",
        )
        for i in range(3)
    ]
    data = jsonl(tmp_path / "orders.jsonl", events)
    rule = tmp_path / "orders.yaml"
    rule.write_text(
        "rules:\n  - id: failed-orders\n    title: Failed orders for {customer}\n"
        "    type: threshold\n    query: index=app sourcetype=myapp:log failed\n"
        "    group_by: [customer]\n    threshold: {op: '>=', value: 3}\n"
        "    severity: high\n    category: application\n"
    )

    code, out, _ = run(
        capsys, rule, "--data", data, "--from", "2026-11-22T09:00:00Z", "--to", NOW.isoformat()
    )

    assert code == 0
    assert "FIRES customer=acme" in out
