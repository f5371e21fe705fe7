"""``run_bot.py import-splunk``: Splunk alerts in, valid rule files out, with a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from detectors.rules import load_rules
from integrations.local import fleet

ROOT = Path(__file__).parents[2]
CONF = ROOT / "tests" / "fixtures" / "savedsearches.conf"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("BOT_", "SPLUNK_")):
            monkeypatch.delenv(name)


def test_imports_what_converts_and_says_why_the_rest_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported"

    code = main(["import-splunk", str(CONF), "--out", str(out), "--category", "security"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1  # not every stanza converted
    assert (
        lines[0]
        == f"[Web - 5xx errors on checkout] (line 7) -> {out}/web-5xx-errors-on-checkout.yaml"
    )
    assert lines[-1] == f"4 of 7 stanza(s) imported into {out}"
    assert "[Security - rare parent process] (line 70) not converted:" in lines
    assert (
        "    custom alert condition (search count < 3 AND dc_hosts > 1) is not converted: fold it "
        "into the query (| search ... or | where ...) and fire on 1 or more results"
    ) in lines
    assert "    dispatch.earliest_time = rt-1m: real-time searches are not converted" in lines
    assert "    not an alert: no alert condition, alert action or tracking is set" in lines

    assert sorted(p.name for p in out.iterdir()) == [
        "auth-failed-logons-by-source.yaml",
        "legacy-service-restarts.yaml",
        "nightly-large-transfers.yaml",
        "web-5xx-errors-on-checkout.yaml",
    ]
    rules = {r.id: r for r in load_rules([out], include_shipped=False, local_spl=False)}
    auth = rules["auth-failed-logons-by-source"]
    assert auth.query.splitlines() == [
        'index=wineventlog sourcetype="WinEventLog:Security" EventCode=4625',
        "| stats count by IpAddress",
        "| where count > 10",
    ]
    assert (auth.schedule, auth.window, auth.query_delay) == (
        "*/10 * * * *",
        timedelta(minutes=10),
        timedelta(minutes=5),
    )
    assert (auth.group_by, auth.realert, auth.severity.value) == (
        ("IpAddress",),
        timedelta(minutes=30),
        "high",
    )
    assert rules["legacy-service-restarts"].enabled is False
    assert rules["web-5xx-errors-on-checkout"].category.value == "security"

    nightly = (out / "nightly-large-transfers.yaml").read_text()
    assert nightly.splitlines()[:2] == [
        "# imported from savedsearches.conf [Nightly - large transfers]",
        "# left behind: dispatch.earliest_time = -1d@d: rule windows are not snapped to @d; the "
        "rule looks back from each run",
    ]
    assert yaml.safe_load(nightly)["threshold"] == {"op": ">", "value": 0}


def test_an_imported_rule_runs_with_test_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_LOCAL_EVENTS_PATH", str(tmp_path / "events.db"))
    main(["import-splunk", str(CONF), "--out", str(tmp_path / "imported")])
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    events = [
        fleet.nginx_access(
            now - timedelta(seconds=1 + 5 * i),
            "web-1",
            "checkout",
            method="GET",
            path="/api/cart",
            status=503,
            latency_ms=3,
            client="198.51.100.9",
        )
        for i in range(25)
    ]
    data = tmp_path / "events.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "time": e.time.isoformat(),
                    "raw": e.raw,
                    "index": "web",
                    "sourcetype": e.sourcetype,
                }
            )
            + "\n"
            for e in events
        )
    )
    capsys.readouterr()

    rule = tmp_path / "imported" / "web-5xx-errors-on-checkout.yaml"
    code = main(["test-rule", str(rule), "--data", str(data), "--to", now.isoformat()])

    assert code == 0
    assert "FIRES (one group): severity medium, 25 events, value 25" in capsys.readouterr().out


def test_a_fully_convertible_file_exits_zero_and_refuses_unreadable_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "savedsearches.conf"
    conf.write_text(
        '[Disk errors]\nsearch = index=os "I/O error"\ncounttype = number of events\n'
        "relation = greater than\nquantity = 0\ndispatch.earliest_time = -10m\n"
        "cron_schedule = */10 * * * *\n"
    )

    assert main(["import-splunk", str(conf), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.endswith(f"1 of 1 stanza(s) imported into {tmp_path / 'out'}\n")
    assert main(["import-splunk", str(tmp_path / "missing.conf")]) == 2
    assert "missing.conf: cannot read: No such file or directory" in capsys.readouterr().err


def test_as_a_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SPLUNK_"))}

    done = subprocess.run(
        [sys.executable, "run_bot.py", "import-splunk", str(CONF), "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout.endswith(f"4 of 7 stanza(s) imported into {tmp_path}\n")
    assert done.stderr == ""
