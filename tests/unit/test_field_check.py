"""validate's warning: a rule groups by a field neither its query nor its sourcetype makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.pipeline.ingest import ingest
from detectors.field_check import field_warnings
from detectors.model import Rule
from detectors.rule_flags import missing_in_group_key, rule_flags
from detectors.rules import load_rules, rule_warnings
from tests.builders import alert, console_policy
from tests.conftest import FakeClock


def rule(tmp_path: Path, query: str, group_by: str = "[attacker]") -> Rule:
    path = tmp_path / "rule.yaml"
    path.write_text(
        "rules:\n  - id: r\n    title: t\n    type: threshold\n"
        f"    query: '{query}'\n    group_by: {group_by}\n"
        "    threshold: {op: '>=', value: 1}\n    severity: low\n    category: security\n"
    )
    (loaded,) = load_rules([path], include_shipped=False)
    return loaded


def test_a_field_no_extraction_makes_is_warned_about(tmp_path: Path) -> None:
    found = rule(tmp_path, 'index=os sourcetype=linux_secure "Failed password"')

    (warning,) = field_warnings(found)
    assert warning.startswith(
        "group_by: field 'attacker' is made neither by the query (eval, rex, spath, stats … as, "
        "rename) nor by the extractions of sourcetype linux_secure"
    )
    assert rule_warnings([found]) == [f"{found.source_file}:2: warning: rule r: {warning}"]


@pytest.mark.parametrize(
    "query",
    [
        'index=os sourcetype=linux_secure | rex "from (?<attacker>\\S+) port"',
        "index=os sourcetype=linux_secure | eval attacker=src",
        "index=os sourcetype=linux_secure | rename src as attacker",
        "index=os sourcetype=linux_secure | stats count as attacker by host",
        "index=os sourcetype=linux_secure attacker=*",
        "index=os sourcetype=app:custom",  # no known extractions: key=value pairs decide
        "index=aws sourcetype=aws:cloudtrail",  # JSON: any key may appear
        "index=os",  # no sourcetype named
    ],
)
def test_no_warning_when_the_query_or_the_data_can_make_it(tmp_path: Path, query: str) -> None:
    assert field_warnings(rule(tmp_path, query)) == []


def test_the_extracted_cim_field_is_enough(tmp_path: Path) -> None:
    found = rule(tmp_path, 'index=os sourcetype=linux_secure "Failed password"', "[host, src]")

    assert field_warnings(found) == []


def test_group_keys_with_a_missing_value() -> None:
    assert missing_in_group_key("ssh|host=web-1,src=") == ("src",)
    assert missing_in_group_key("ssh|host=,src=") == ("host", "src")
    assert missing_in_group_key("ssh|host=web-1,src=a\\=b") == ()
    assert missing_in_group_key("ssh|msg=a\\,b=,src=1") == ()


def test_rule_flags_name_incidents_whose_group_lacked_a_value(
    sqlite_engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    guessing = rule(tmp_path, 'index=os sourcetype=linux_secure "Failed password"')
    missing = alert(clock.now(), rule="ssh", group=(("host", "web-1"), ("src", "")))
    with sqlite_engine.begin() as conn:
        ingest(conn, [missing, alert(clock.now(), rule="web-5xx")], clock.now(), console_policy())

    flags = rule_flags([guessing], sqlite_engine)

    assert flags["ssh"] == ["1 recent incident had no src: its events lack the field it groups by"]
    assert flags["r"][0].startswith("group_by: field 'attacker'")
    assert "web-5xx" not in flags
