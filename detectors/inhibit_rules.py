"""Inhibit rules in rule folders: a file of their own, whose top-level key is ``inhibit_rules``.

::

    inhibit_rules:
      - name: host-down-mutes-its-services
        source_matchers: [rule=host-down]
        target_matchers: [severity!=critical]
        equal: [host]

Matchers use the syntax silences use (``field=value`` with ``*`` wildcards, ``field!=value``).
Problems are ``file:line: message``; a label no rule can produce (not one of the labels every
incident has, nor a ``group_by`` field of a loaded rule) is a warning, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import PermanentError
from bot.pipeline.inhibit import InhibitRule
from bot.pipeline.matchers import Matcher, parse_matchers
from detectors.model import Rule
from detectors.rule_source import Problem, Shape, describe_error, error_loc, read_file

KEY = "inhibit_rules"
SHAPE = Shape(noun="inhibit rule", list_key=KEY)
#: the labels every incident has (see ``bot.pipeline.ingest.labels_of``)
BUILT_IN_LABELS = frozenset({"rule", "severity", "category", "service", "host"})


class InhibitRuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    source_matchers: tuple[str, ...] = Field(min_length=1)
    target_matchers: tuple[str, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()


def is_inhibit_file(file: Path) -> bool:
    """Whether ``file`` holds inhibit rules (its top-level mapping has ``inhibit_rules``)."""
    try:
        head = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if KEY not in head:
        return False
    try:
        data = yaml.safe_load(head)
    except yaml.YAMLError:
        return any(line.startswith(f"{KEY}:") for line in head.splitlines())
    return isinstance(data, dict) and KEY in data


def read_inhibit_file(file: Path) -> tuple[list[InhibitRule], list[Problem]]:
    docs, problems = read_file(file, SHAPE)
    rules = []
    for doc in docs:
        try:
            spec = InhibitRuleSpec.model_validate(doc.data)
        except ValidationError as exc:
            for error in exc.errors():
                message = describe_error(error, InhibitRuleSpec, ())
                problems.append(Problem(str(file), doc.line_of(error_loc(error)), message))
            continue
        source = _matchers(spec.source_matchers, "source_matchers", doc.line_of, file, problems)
        target = _matchers(spec.target_matchers, "target_matchers", doc.line_of, file, problems)
        if source and target:
            rules.append(InhibitRule(source, target, spec.equal, spec.name))
    return rules, problems


def _matchers(
    texts: Sequence[str],
    key: str,
    line_of: Callable[[tuple[str | int, ...]], int],
    file: Path,
    problems: list[Problem],
) -> tuple[Matcher, ...]:
    try:
        return parse_matchers(texts, "an inhibit rule")
    except PermanentError as exc:
        problems.append(Problem(str(file), line_of((key,)), f"{key}: {exc}"))
        return ()


def read_inhibit_rules(files: Iterable[Path]) -> tuple[list[InhibitRule], list[Problem]]:
    rules: list[InhibitRule] = []
    problems: list[Problem] = []
    for file in files:
        found, wrong = read_inhibit_file(file)
        rules.extend(found)
        problems.extend(wrong)
    return rules, problems


def inhibit_warnings(files: Iterable[Path], detection_rules: Sequence[Rule]) -> list[str]:
    """``file:line: warning: …`` for each label an inhibit rule names that no incident has."""
    known = set(BUILT_IN_LABELS)
    for rule in detection_rules:
        known.update(rule.group_by)
    out = []
    for file in files:
        docs, _ = read_file(file, SHAPE)
        for doc in docs:
            for key in ("source_matchers", "target_matchers", "equal"):
                values = doc.data.get(key)
                if not isinstance(values, list):
                    continue
                for index, text in enumerate(values):
                    name = str(text).split("!=")[0].split("=")[0].strip()
                    if name and name not in known:
                        out.append(
                            f"{file}:{doc.line_of((key, index))}: warning: {key}: label "
                            f"'{name}' is not one incidents have (known: "
                            f"{', '.join(sorted(known))})"
                        )
    return out


__all__ = [
    "InhibitRuleSpec",
    "inhibit_warnings",
    "is_inhibit_file",
    "read_inhibit_file",
    "read_inhibit_rules",
]
