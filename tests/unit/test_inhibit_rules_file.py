"""``inhibit_rules`` files: loaded next to the rules, checked by ``validate`` (file:line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from detectors.rules import RuleFileError, load_inhibit_rules, load_rules, validate_paths

GOOD = """\
inhibit_rules:
  - name: host-down-mutes-its-services
    source_matchers: [rule=host-down]
    target_matchers: [severity!=critical]
    equal: [host]
"""
BAD = """\
inhibit_rules:
  - source_matchers: [rule=host-down]
    target_matchers: [severity]
    equal: [host]
  - source_matchers: []
    target_matchers: [severity=low]
    colour: red
"""
UNKNOWN_LABEL = """\
inhibit_rules:
  - source_matchers: [rule=host-down]
    target_matchers: [severity=low]
    equal: [datacenter]
"""


def test_inhibit_rules_load_beside_the_rules(tmp_path: Path) -> None:
    (tmp_path / "inhibit.yaml").write_text(GOOD)
    (rule,) = load_inhibit_rules([tmp_path], include_shipped=False)
    assert rule.name == "host-down-mutes-its-services" and rule.equal == ("host",)
    assert rule.describe() == "rule=host-down inhibits severity!=critical with the same host"
    # the rule loader leaves the file to the inhibit loader
    assert load_rules([tmp_path], include_shipped=False) == []


def test_problems_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "inhibit.yaml"
    path.write_text(BAD)
    found = [str(p) for p in validate_paths([tmp_path], include_shipped=False)]
    assert (
        f"{path}:3: target_matchers: bad matcher 'severity': use field=value or field!=value"
        in found
    )
    assert any(p.startswith(f"{path}:5: source_matchers") for p in found), found
    assert any(p.startswith(f"{path}:7: ") and "colour" in p for p in found), found
    with pytest.raises(RuleFileError):
        load_inhibit_rules([tmp_path], include_shipped=False)


def test_validate_checks_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    path = tmp_path / "inhibit.yaml"
    path.write_text(UNKNOWN_LABEL)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}:4: warning: equal: label 'datacenter' is not one incidents have" in out
    path.write_text(BAD)
    assert main(["validate", str(path)]) != 0
    assert f"{path}:3: target_matchers: bad matcher 'severity'" in capsys.readouterr().out
