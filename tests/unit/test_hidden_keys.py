"""``source_file`` and ``source_line`` are set by the loader; a playbook file that writes them
is told so at the line where it does, like a rule file."""

from __future__ import annotations

from pathlib import Path

from detectors.rules import load_rules
from playbooks.loader import read_playbooks

GOOD = Path(__file__).parent.parent / "fixtures" / "playbooks" / "good" / "restart-checkout.yaml"


def test_a_playbook_naming_its_own_source_is_refused_at_that_line(tmp_path: Path) -> None:
    text = GOOD.read_text().replace("risk: high\n", "risk: high\nsource_file: elsewhere.yaml\n")
    path = tmp_path / "restart-checkout.yaml"
    path.write_text(text)
    line = text.splitlines().index("source_file: elsewhere.yaml") + 1
    playbooks, problems = read_playbooks([path], include_shipped=False, rules=load_rules([]))
    assert [str(p) for p in problems] == [f"{path}:{line}: unknown key 'source_file'"]
    assert playbooks == []
