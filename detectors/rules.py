"""Loading and validating rule files.

Every problem is reported as ``file:line: message``, and every problem of every file is reported
in one go: YAML syntax, unknown or missing keys, bad values, durations and cron expressions,
duplicate ids, SPL the local engine cannot parse, and ``group_by`` (or threshold) fields the
query's output cannot have.

Rules meant for a real Splunk may use SPL beyond the local engine's subset: with
``local_spl=False`` a query the engine cannot parse is not a problem (everything else is still
checked, and the field cross-check runs whenever the engine can parse the query).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from bot.errors import ConfigError
from bot.pipeline.inhibit import InhibitRule
from detectors.field_check import field_warnings
from detectors.fields import FieldExtractor
from detectors.inhibit_rules import is_inhibit_file, read_inhibit_rules
from detectors.model import SOURCE_FIELDS, Rule
from detectors.rule_source import (
    YAML_SUFFIXES,
    Loc,
    Problem,
    RuleDoc,
    describe_error,
    dotted,
    error_loc,
    read_file,
    without_hidden,
    yaml_files,
)
from detectors.spl import SplError, parse
from detectors.types import RULE_TYPES

SHIPPED = Path(__file__).parent / "content"
RULE_SUFFIXES = YAML_SUFFIXES


class RuleFileError(ConfigError):
    """Rule files that cannot be loaded; ``problems`` lists everything wrong with them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def load_rules(
    paths: Sequence[Path], include_shipped: bool = True, local_spl: bool = True
) -> list[Rule]:
    """The rules in ``paths`` (files, or folders searched for ``*.yaml``/``*.yml``), plus the
    shipped ones; raises :class:`RuleFileError` listing every problem found. ``local_spl``:
    queries must be SPL the local engine can run (turn off for rules run by Splunk)."""
    rules, problems = read_rules(paths, include_shipped, local_spl)
    if problems:
        raise RuleFileError(problems)
    return rules


def validate_paths(
    paths: Sequence[Path], include_shipped: bool = True, local_spl: bool = True
) -> list[Problem]:
    """Every problem in the rule files of ``paths`` (and the shipped ones), inhibit rule files
    included; empty when all load. ``local_spl`` as for :func:`load_rules`."""
    problems = read_rules(paths, include_shipped, local_spl)[1]
    return problems + read_inhibit_rules(inhibit_files(paths, include_shipped))[1]


def inhibit_files(paths: Sequence[Path], include_shipped: bool = True) -> list[Path]:
    """The files of ``paths`` (and the shipped folder) that hold ``inhibit_rules``."""
    roots = [SHIPPED, *paths] if include_shipped else list(paths)
    return [f for f in yaml_files(roots)[0] if is_inhibit_file(f)]


def load_inhibit_rules(paths: Sequence[Path], include_shipped: bool = True) -> list[InhibitRule]:
    """The inhibit rules of the rule folders; raises :class:`RuleFileError` on any problem."""
    rules, problems = read_inhibit_rules(inhibit_files(paths, include_shipped))
    if problems:
        raise RuleFileError(problems)
    return rules


def read_rules(
    paths: Sequence[Path], include_shipped: bool = True, local_spl: bool = True
) -> tuple[list[Rule], list[Problem]]:
    """The rules that load and every problem of the others (``validate`` checks playbooks
    against the good rules while it reports the bad ones)."""
    roots = [SHIPPED, *paths] if include_shipped else list(paths)
    files, problems = yaml_files(roots)
    rules: list[Rule] = []
    defined: dict[str, str] = {}
    for file in files:
        if is_inhibit_file(file):  # inhibit rules: read by load_inhibit_rules
            continue
        file_rules, file_problems = _load_file(file, local_spl)
        for rule, id_line in file_rules:
            where = f"{file}:{id_line}"
            if rule.id in defined:
                file_problems.append(
                    Problem(
                        str(file),
                        id_line,
                        f"duplicate id '{rule.id}' (first defined at {defined[rule.id]})",
                    )
                )
                continue
            defined[rule.id] = where
            rules.append(rule)
        problems.extend(sorted(file_problems, key=lambda problem: problem.line))
    return rules, problems


def _load_file(file: Path, local_spl: bool) -> tuple[list[tuple[Rule, int]], list[Problem]]:
    docs, problems = read_file(file)
    rules = []
    for doc in docs:
        rule, rule_problems = _validate(str(file), doc, local_spl)
        problems.extend(rule_problems)
        if rule is not None:
            rules.append((rule, doc.line_of(("id",))))
    return rules, problems


def _validate(file: str, doc: RuleDoc, local_spl: bool) -> tuple[Rule | None, list[Problem]]:
    problems: list[Problem] = []

    def report(loc: Loc, message: str) -> None:
        problems.append(Problem(file, doc.line_of(loc), message))

    data = without_hidden(doc, SOURCE_FIELDS, report)
    kind = data.get("type")
    rule_type = RULE_TYPES.get(kind) if isinstance(kind, str) else None
    model: type[Rule] = rule_type.model if rule_type is not None else Rule
    if isinstance(kind, str) and rule_type is None:
        known = ", ".join(sorted(RULE_TYPES))
        report(("type",), f"type: unknown rule type '{kind}' (known: {known})")
    other_types_keys = {
        key for entry in RULE_TYPES.values() for key in entry.model.model_fields
    } - set(model.model_fields)

    rule: Rule | None = None
    try:
        rule = model.model_validate({**data, "source_file": file, "source_line": doc.line})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if (
                rule_type is None
                and error["type"] == "extra_forbidden"
                and len(loc) == 1
                and loc[0] in other_types_keys
            ):
                continue  # belongs to the rule's (unknown or missing) type
            report(error_loc(error), describe_error(error, model, SOURCE_FIELDS))

    query = data.get("query")
    if isinstance(query, str) and query.strip():
        try:
            pipeline = parse(query)
        except SplError as exc:
            if local_spl:
                report(("query",), f"query: {exc}")
        else:
            output = pipeline.output_fields()
            if rule is not None and output is not None:
                for loc, name in rule.result_fields():
                    if name not in output:
                        have = ", ".join(sorted(output)) or "none"
                        report(
                            loc,
                            f"{dotted(loc[:1] if loc[0] == 'group_by' else loc)}: field "
                            f"'{name}' is not in the query's output (it has: {have})",
                        )
    return (rule if not problems else None), problems


def rule_warnings(rules: Sequence[Rule], extractor: FieldExtractor | None = None) -> list[str]:
    """``file:line: warning: …`` for each rule field nothing can produce (see
    :mod:`detectors.field_check`): worth a look, not an error."""
    return [
        f"{rule.source_file}:{rule.source_line}: warning: rule {rule.id}: {message}"
        for rule in rules
        for message in field_warnings(rule, extractor)
    ]


__all__ = [
    "Problem",
    "Rule",
    "RuleFileError",
    "inhibit_files",
    "load_inhibit_rules",
    "load_rules",
    "read_rules",
    "rule_warnings",
    "validate_paths",
]
