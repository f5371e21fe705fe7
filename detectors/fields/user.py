"""A user's own field extractions: a small ``props``-like YAML file.

    # sourcetype (``*`` wildcards allowed) -> regexes with named groups
    myapp:log:
      - 'took (?<duration_ms>\\d+) ms'
      - regex: 'order (?<order_id>\\d+)'
        description: order numbers
    "WinEventLog:*":
      - 'Process Name:\\s+(?<process_path>\\S+)'

Regexes are PCRE-style as in Splunk (``(?<name>...)`` or ``(?P<name>...)``), searched anywhere
in ``_raw``; each named group that matches becomes a field. Problems come back as
``file:line: message``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from bot.errors import ConfigError
from detectors.fields.model import Fields, Pattern, SourcetypeExtraction, python_regex
from detectors.rule_source import Problem, suggestion, yaml_files

ENTRY_KEYS = ("regex", "description")
_FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ExtractionFileError(ConfigError):
    """The extraction files have problems; ``problems`` lists each as ``file:line: message``."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _pattern(file: str, node: yaml.Node, problems: list[Problem]) -> Pattern | None:
    text_node: yaml.Node | None = node
    if isinstance(node, yaml.MappingNode):
        text_node = None
        for key_node, value_node in node.value:
            key = key_node.value
            if key == "regex":
                text_node = value_node
            elif key not in ENTRY_KEYS:
                problems.append(
                    Problem(
                        file,
                        _line(key_node),
                        f"unknown key '{key}'{suggestion(str(key), ENTRY_KEYS)}; "
                        f"an entry takes: {', '.join(ENTRY_KEYS)}",
                    )
                )
                return None
        if text_node is None:
            problems.append(Problem(file, _line(node), "an entry needs 'regex:'"))
            return None
    if not isinstance(text_node, yaml.ScalarNode) or text_node.tag != "tag:yaml.org,2002:str":
        problems.append(
            Problem(file, _line(node), "expected a regex (a string) or a mapping with 'regex:'")
        )
        return None
    text = str(text_node.value)
    try:
        regex = re.compile(python_regex(text))
    except re.error as exc:
        at = f" at character {exc.pos + 1}" if exc.pos is not None else ""
        problems.append(Problem(file, _line(text_node), f"bad regex {text!r}: {exc.msg}{at}"))
        return None
    if not regex.groupindex:
        problems.append(
            Problem(
                file,
                _line(text_node),
                f"regex {text!r} has no named group, so it extracts nothing; "
                "name what it captures, e.g. (?<user>\\S+)",
            )
        )
        return None
    return Pattern(regex)


def _entries(file: str, root: yaml.Node, problems: list[Problem]) -> list[SourcetypeExtraction]:
    if not isinstance(root, yaml.MappingNode):
        problems.append(
            Problem(file, _line(root), "expected a mapping of sourcetype -> list of regexes")
        )
        return []
    found: list[SourcetypeExtraction] = []
    for key_node, value_node in root.value:
        sourcetype = str(key_node.value).strip()
        if not isinstance(key_node, yaml.ScalarNode) or not sourcetype:
            problems.append(Problem(file, _line(key_node), "expected a sourcetype name"))
            continue
        items = value_node.value if isinstance(value_node, yaml.SequenceNode) else None
        if isinstance(value_node, yaml.ScalarNode) and value_node.value:
            items = [value_node]  # one regex written without a list
        if not items:
            problems.append(
                Problem(file, _line(value_node), f"'{sourcetype}' needs a list of regexes")
            )
            continue
        patterns = [p for item in items if (p := _pattern(file, item, problems)) is not None]
        if len(patterns) == len(items):
            found.append(_extraction(f"{file}:{_line(key_node)}", sourcetype, tuple(patterns)))
    return found


def _extraction(name: str, sourcetype: str, patterns: tuple[Pattern, ...]) -> SourcetypeExtraction:
    def extract(raw: str) -> Fields:
        found: Fields = {}
        for p in patterns:
            p.apply(raw, found)
        return found

    fields = frozenset().union(*(p.fields for p in patterns))
    return SourcetypeExtraction(name, (sourcetype,), extract, fields)


def read_extractions(file: str, text: str) -> tuple[list[SourcetypeExtraction], list[Problem]]:
    """The extractions ``text`` declares, and what is wrong with it (``file`` names it)."""
    problems: list[Problem] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return [], [Problem(file, line, f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return [], [Problem(file, 1, f"invalid YAML: {exc}")]
    if root is None:
        return [], []
    found = _entries(file, root, problems)
    return found, problems


def load_extraction_files(
    paths: Sequence[Path],
) -> tuple[list[SourcetypeExtraction], list[Problem]]:
    """Every extraction in ``paths`` (YAML files, or folders of them) and every problem."""
    files, problems = yaml_files(paths)
    found: list[SourcetypeExtraction] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(file), 0, f"cannot read: {exc}"))
            continue
        more, wrong = read_extractions(str(file), text)
        found.extend(more)
        problems.extend(wrong)
    return found, problems
