"""Rule and playbook files with values replaced, keys removed or text garbled: they load, or the
loader raises its file error whose every problem names ``file:line``; nothing else escapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from detectors.rule_source import Problem
from detectors.rules import RuleFileError, load_rules
from playbooks.loader import PlaybookFileError, load_playbooks
from tests.fuzz.mutate import FUZZ, mutated

ROOT = Path(__file__).parent.parent.parent
RULES = yaml.safe_load((ROOT / "detectors" / "content" / "web.yaml").read_text())
RULES = {"rules": RULES["rules"][:2]}
PLAYBOOK = yaml.safe_load(
    (ROOT / "tests" / "fixtures" / "playbooks" / "good" / "restart-checkout.yaml").read_text()
)


def as_text(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@st.composite
def garbled(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters inserted, removed or a line duplicated."""
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        kind = draw(st.sampled_from(["insert", "drop", "repeat"]))
        if kind == "insert":
            column = draw(st.integers(0, len(lines[at]))) if lines else 0
            bit = draw(
                st.sampled_from([":", "- ", "\t", "  ", "{", "]", "&a", "*a", "!!python/x", "'"])
            )
            line = lines[at] if lines else ""
            lines[at : at + 1] = [line[:column] + bit + line[column:]]
        elif kind == "drop" and lines:
            del lines[at]
        elif lines:
            lines.insert(at, lines[at])
    return "".join(lines)


def file_lines(problems: list[Problem], file: Path) -> None:
    assert problems
    for problem in problems:
        assert problem.file == str(file) and problem.line >= 1, str(problem)
        assert str(problem).startswith(f"{file}:{problem.line}: ")


def write(folder: Path, text: str) -> Path:
    path = folder / "user.yaml"  # one file, rewritten by every example
    path.write_text(text, encoding="utf-8")
    return path


TEXTS_OF_RULES = mutated(RULES).map(as_text) | garbled(as_text(RULES))
TEXTS_OF_PLAYBOOKS = mutated(PLAYBOOK).map(as_text) | garbled(as_text(PLAYBOOK))


@FUZZ
@given(text=TEXTS_OF_RULES)
def test_rule_files(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    try:
        load_rules([path], include_shipped=False)
    except RuleFileError as exc:
        file_lines(exc.problems, path)


@FUZZ
@given(text=TEXTS_OF_PLAYBOOKS)
def test_playbook_files(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    try:
        load_playbooks([path], include_shipped=False)
    except PlaybookFileError as exc:
        file_lines(exc.problems, path)
