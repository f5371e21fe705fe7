"""The shipped rules on log files in the formats real systems write (tests/fixtures/logs).

Each fixture is read as ``test-rule --data FILE --sourcetype ...`` reads it and replayed with
the backtest (the scheduler's runs over the whole file): every rule that claims the data opens
exactly the incidents the manifest lists (one per attacking address, per failing disk...), and
none on the noisy-normal fixtures. ``python -m detectors.tools.content_proof`` prints the same
as a table.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from detectors.model import Rule
from detectors.rules import load_rules
from detectors.tools.content_proof import Fixture, load_manifest, replay_fixture

LOGS = Path(__file__).parents[1] / "fixtures" / "logs"
CONTENT = Path(__file__).parents[2] / "detectors" / "content"
MANIFEST = load_manifest()
ATTACKERS = (
    "103.99.0.122",
    "116.31.116.24",
    "183.62.140.253",
    "218.92.0.107",
    "45.227.254.8",
    "61.177.172.13",
    "92.118.39.61",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("BOT_", "SPLUNK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOT_LOCAL_EVENTS_PATH", str(tmp_path / "events.db"))


@pytest.fixture(scope="module")
def rules() -> dict[str, Rule]:
    return {rule.id: rule for rule in load_rules([])}


@pytest.mark.parametrize("fixture", MANIFEST.fixtures, ids=[f.file for f in MANIFEST.fixtures])
async def test_each_rule_opens_exactly_the_listed_incidents(
    fixture: Fixture, rules: dict[str, Rule]
) -> None:
    outcomes = await replay_fixture(fixture, rules, LOGS)

    assert {o.rule_id: o.keys for o in outcomes} == {
        rule_id: fixture.expected(rule_id) for rule_id in fixture.rules
    }


def test_every_fire_fixture_has_a_quiet_one_for_the_same_rule() -> None:
    fires = {rule for f in MANIFEST.fixtures for rule in f.fires}
    quiet = {rule for f in MANIFEST.fixtures for rule in f.rules if rule not in f.fires}

    assert fires <= quiet


def try_rule(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test-rule", *args])
    return code, capsys.readouterr().out


def test_rule_on_a_plain_auth_log_names_each_attacking_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = try_rule(
        capsys,
        str(CONTENT / "linux.yaml"),
        "--data",
        str(LOGS / "linux_secure" / "sshd-guessing.log"),
        "--sourcetype",
        "linux_secure",
        "--index",
        "os",
        "--year",
        "2026",
        "--from",
        "2026-11-22T09:19:00Z",
        "--to",
        "2026-11-22T09:23:00Z",
        "--strict",
    )

    assert code == 0  # --strict: every row has host and src
    assert "FIRES host=bastion-1, src=183.62.140.253" in out
    assert "| [HIGH] SSH password guessing from 183.62.140.253 on bastion-1" in out
    assert "1 group would fire" in out
    assert "missing" not in out and "unknown" not in out


def test_rule_takes_the_year_from_the_files_date_when_syslog_omits_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "auth.log"
    shutil.copy(LOGS / "linux_secure" / "sshd-guessing.log", log)
    os.utime(log, (1_797_000_000, 1_797_000_000))  # 2026-12-09

    code, out = try_rule(
        capsys,
        str(CONTENT / "linux.yaml"),
        "--data",
        str(log),
        "--sourcetype",
        "linux_secure",
        "--index",
        "os",
        "--from",
        "2026-11-22T09:00:00Z",
        "--to",
        "2026-11-22T12:00:00Z",
    )

    assert code == 0
    assert "7 groups would fire" in out
    for address in ATTACKERS:
        assert f"src={address}" in out


GROUPS_BY_A_FIELD_NOBODY_MAKES = """\
rules:
  - id: guessing-by-attacker
    title: "SSH password guessing from {attacker}"
    type: threshold
    query: index=os sourcetype=linux_secure "Failed password"
    window: 5m
    group_by: [attacker]
    threshold: {op: ">=", value: 10}
    severity: high
    category: security
"""


def test_strict_fails_when_every_row_lacks_the_group_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(GROUPS_BY_A_FIELD_NOBODY_MAKES)
    args = [
        str(path),
        "--data",
        str(LOGS / "linux_secure" / "sshd-guessing.log"),
        "--sourcetype",
        "linux_secure",
        "--index",
        "os",
        "--year",
        "2026",
        "--from",
        "2026-11-22T09:00:00Z",
        "--to",
        "2026-11-22T12:00:00Z",
    ]

    lenient, out = try_rule(capsys, *args)
    strict, _ = try_rule(capsys, *args, "--strict")

    assert (lenient, strict) == (0, 1)
    assert "WARNING attacker missing in 146 of 146 rows: every event falls into one group" in out
    assert "| [HIGH] SSH password guessing from attacker unknown" in out
    assert "(none)" not in out


def test_backtest_reports_the_missing_group_field_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(GROUPS_BY_A_FIELD_NOBODY_MAKES)

    code = main(
        [
            "backtest",
            str(path),
            "--data",
            str(LOGS / "linux_secure" / "sshd-guessing.log"),
            "--sourcetype",
            "linux_secure",
            "--index",
            "os",
            "--year",
            "2026",
            "--from",
            "2026-11-22T10:15:00Z",
            "--to",
            "2026-11-22T10:30:00Z",
            "--strict",
        ]
    )
    out = capsys.readouterr().out

    assert code == 1
    assert "WARNING attacker missing in" in out
    assert "every event falls into one group" in out


def test_card_numbers_in_application_logs_never_reach_the_card(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = try_rule(
        capsys,
        str(CONTENT / "app.yaml"),
        "--data",
        str(LOGS / "app" / "payments-errors.jsonl"),
        "--sourcetype",
        "app:log",
        "--index",
        "app",
        "--from",
        "2026-11-22T09:12:00Z",
        "--to",
        "2026-11-22T09:14:30Z",
    )

    assert code == 0
    assert "| [MEDIUM] ERROR burst in payments" in out
    assert "[REDACTED:card]" in out
    for number in ("4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"):
        assert number not in out
    assert "3782 822463 10005" not in out


def test_a_plain_log_without_a_sourcetype_is_refused_with_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "test-rule",
            str(CONTENT / "linux.yaml"),
            "--data",
            str(LOGS / "linux_secure" / "sshd-normal.log"),
        ]
    )

    assert code == 2
    assert "--sourcetype linux_secure" in capsys.readouterr().err


def test_validate_warns_about_a_group_field_nothing_makes_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(GROUPS_BY_A_FIELD_NOBODY_MAKES)

    code = main(["validate", str(path)])
    out = capsys.readouterr().out

    assert code == 0
    assert f"{path}:2: warning: rule guessing-by-attacker: group_by: field 'attacker'" in out
    assert out.rstrip().endswith("all files are valid (1 warning(s))")

    extractions = tmp_path / "extractions.yaml"
    extractions.write_text("linux_secure:\n  - 'from (?<attacker>\\S+) port'\n")
    monkeypatch.setenv("BOT_FIELD_EXTRACTIONS_PATH", str(extractions))

    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("all files are valid")
