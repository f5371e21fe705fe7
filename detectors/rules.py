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

import difflib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.errors import ConfigError
from detectors.model import SOURCE_FIELDS, Rule
from detectors.rule_source import Loc, Problem, RuleDoc, dotted, read_rule_docs
from detectors.types import RULE_TYPES
from integrations.local import SplError, parse

SHIPPED = Path(__file__).parent / "content"
RULE_SUFFIXES = (".yaml", ".yml")


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
    rules, problems = _load(paths, include_shipped, local_spl)
    if problems:
        raise RuleFileError(problems)
    return rules


def validate_paths(
    paths: Sequence[Path], include_shipped: bool = True, local_spl: bool = True
) -> list[Problem]:
    """Every problem in the rule files of ``paths`` (and the shipped ones); empty when all load.
    ``local_spl`` as for :func:`load_rules`."""
    return _load(paths, include_shipped, local_spl)[1]


def _load(
    paths: Sequence[Path], include_shipped: bool, local_spl: bool
) -> tuple[list[Rule], list[Problem]]:
    roots = [SHIPPED, *paths] if include_shipped else list(paths)
    files, problems = _rule_files(roots)
    rules: list[Rule] = []
    defined: dict[str, str] = {}
    for file in files:
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


def _rule_files(roots: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for root in roots:
        if root.is_dir():
            found = sorted(
                path for path in root.rglob("*") if path.suffix in RULE_SUFFIXES and path.is_file()
            )
        elif root.is_file():
            found = [root]
        else:
            problems.append(Problem(str(root), 0, "no such file or folder"))
            continue
        for path in found:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                files.append(path)
    return files, problems


def _load_file(file: Path, local_spl: bool) -> tuple[list[tuple[Rule, int]], list[Problem]]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [], [Problem(str(file), 0, "not UTF-8 text")]
    except OSError as exc:
        return [], [Problem(str(file), 0, f"cannot read: {exc.strerror or exc}")]
    docs, problems = read_rule_docs(str(file), text)
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

    data = dict(doc.data)
    for name in SOURCE_FIELDS:
        if name in data:
            report((name,), f"unknown key '{name}'")
            del data[name]
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
            report(loc, _message(error, model))

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


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    where = dotted(loc)
    if error["type"] == "extra_forbidden":
        parent, key = loc[:-1], str(loc[-1])
        known = _keys_at(model, parent)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean '{dotted((*parent, close[0]))}'?)" if close else ""
        return f"unknown key '{where}'{hint}"
    if error["type"] == "missing":
        return f"missing required key '{where}'"
    if error["type"] == "rule_value":
        return f"{where}: {error['msg']}"
    message = error["msg"][:1].lower() + error["msg"][1:]
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {value!r})"
    return f"{where}: {message}"


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a rule file may write at ``loc`` inside ``model`` (nested models followed)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return []
        current = _nested_model(current.model_fields[part].annotation)
    if current is None:
        return []
    return [name for name in current.model_fields if name not in SOURCE_FIELDS]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


__all__ = ["Problem", "Rule", "RuleFileError", "load_rules", "validate_paths"]
