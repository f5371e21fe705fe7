"""Loading and validating playbook files into a :class:`~playbooks.registry.Registry`.

Every problem of every file is reported in one go, as ``file:line: message``: YAML syntax,
unknown keys (with a suggestion), bad values and durations, duplicate ids, executors, actions and
arguments the catalog (:mod:`playbooks.catalog`) does not have, ``{label}`` references the matched
rules do not produce, ``matches.rules`` naming no rule, ``undo`` naming no rollback step, and
rules whose ``suggested_playbook`` names no playbook.

A file holds one playbook (a mapping with ``id``) or several under ``playbooks:``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.errors import ConfigError
from detectors.model import SOURCE_FIELDS, Rule
from detectors.rule_source import (
    Loc,
    Problem,
    RuleDoc,
    Shape,
    describe_error,
    dotted,
    error_loc,
    read_file,
    read_rule_docs,
    suggestion,
    without_hidden,
    yaml_files,
)
from detectors.rules import SHIPPED as SHIPPED_RULES
from playbooks.catalog import CATALOG
from playbooks.registry import Registry, may_apply, produced_labels
from playbooks.spec import LABEL_REF, ParamType, Playbook

SHIPPED = Path(__file__).parent / "library"
PLAYBOOKS = Shape(noun="playbook", list_key="playbooks")
#: executors that exist only when the bot runs on its embedded default
EMBEDDED_EXECUTORS = frozenset({"shell", "generator"})


class PlaybookFileError(ConfigError):
    """Playbook files that cannot be loaded; ``problems`` lists everything wrong with them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def load_playbooks(
    paths: Sequence[Path],
    include_shipped: bool = True,
    rules: Sequence[Rule] = (),
    embedded: bool = True,
) -> Registry:
    """The registry of the playbooks in ``paths`` (files, or folders searched for ``*.yaml``)
    plus the shipped library. ``rules``: the deployment's rules, to check ``matches.rules``,
    ``{label}`` references and their ``suggested_playbook`` (no rule checks when empty).
    ``embedded``: whether the bot runs on its embedded default; if not, ``embedded_only``
    playbooks are left out. Raises :class:`PlaybookFileError` listing every problem."""
    playbooks, problems = read_playbooks(paths, include_shipped, rules)
    if problems:
        raise PlaybookFileError(problems)
    return Registry(playbooks, rules, embedded)


def read_playbooks(
    paths: Sequence[Path], include_shipped: bool = True, rules: Sequence[Rule] = ()
) -> tuple[list[Playbook], list[Problem]]:
    """The playbooks that load, and every problem of the files (and of the rules' suggestions)."""
    roots = [SHIPPED, *paths] if include_shipped else list(paths)
    files, problems = yaml_files(roots)
    checker = _RuleChecks(rules)
    playbooks: list[Playbook] = []
    defined: dict[str, str] = {}
    for file in files:
        docs, file_problems = read_file(file, PLAYBOOKS)
        for doc in docs:
            playbook, found = _validate(str(file), doc, checker)
            file_problems.extend(found)
            if playbook is None:
                continue
            id_line = doc.line_of(("id",))
            if playbook.id in defined:
                file_problems.append(
                    Problem(
                        str(file),
                        id_line,
                        f"duplicate id '{playbook.id}' (first defined at {defined[playbook.id]})",
                    )
                )
                continue
            defined[playbook.id] = f"{file}:{id_line}"
            playbooks.append(playbook)
        problems.extend(sorted(file_problems, key=lambda problem: problem.line))
    known = set(defined) | (set() if include_shipped else _shipped_ids())
    problems.extend(checker.suggestions(known))
    return playbooks, problems


def is_playbook_file(path: Path) -> bool:
    """Whether a YAML file holds playbooks rather than rules: a top-level ``playbooks:`` or
    ``steps:`` key (rules have neither)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return any(line.startswith(("playbooks:", "steps:")) for line in text.splitlines())
    for data in documents:
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and ("playbooks" in item or "steps" in item):
                return True
    return False


def split_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """``(rule files, playbook files)`` among ``paths`` (folders are searched), by content."""
    files, _ = yaml_files([p for p in paths if p.exists()])
    rule_files: list[Path] = []
    playbook_files: list[Path] = []
    for file in files:
        (playbook_files if is_playbook_file(file) else rule_files).append(file)
    return rule_files, playbook_files


# --- one playbook -----------------------------------------------------------------------------


def _validate(
    file: str, doc: RuleDoc, checker: _RuleChecks
) -> tuple[Playbook | None, list[Problem]]:
    problems: list[Problem] = []

    def report(loc: Loc, message: str) -> None:
        problems.append(Problem(file, doc.line_of(loc), message))

    data = without_hidden(doc, SOURCE_FIELDS, report)
    try:
        playbook = Playbook.model_validate({**data, "source_file": file, "source_line": doc.line})
    except ValidationError as exc:
        for error in exc.errors():
            report(error_loc(error), describe_error(error, Playbook, SOURCE_FIELDS))
        return None, problems
    for loc, message in (*_catalog_problems(playbook), *_parameter_problems(playbook)):
        report(loc, message)
    for loc, message in checker.problems(playbook):
        report(loc, message)
    return (playbook if not problems else None), problems


def _steps(playbook: Playbook) -> Iterator[tuple[Loc, str, str, dict[str, object]]]:
    for phase in ("steps", "rollback"):
        for index, step in enumerate(getattr(playbook, phase)):
            yield (phase, index), step.executor, step.action, dict(step.args)


def _catalog_problems(playbook: Playbook) -> Iterator[tuple[Loc, str]]:
    for at, executor, action, args in _steps(playbook):
        where = dotted(at)
        actions = CATALOG.get(executor)
        if actions is None:
            known = ", ".join(sorted(CATALOG))
            yield (
                (*at, "executor"),
                f"{where}.executor: unknown executor '{executor}'"
                f"{suggestion(executor, CATALOG)} (known: {known})",
            )
            continue
        if executor in EMBEDDED_EXECUTORS and not playbook.embedded_only:
            yield (
                (*at, "executor"),
                f"{where}.executor: '{executor}' runs only on the embedded default: "
                "set 'embedded_only: true' on the playbook",
            )
        spec = actions.get(action)
        if spec is None:
            yield (
                (*at, "action"),
                f"{where}.action: executor '{executor}' has no action '{action}'"
                f"{suggestion(action, actions)} (its actions: {', '.join(sorted(actions))})",
            )
            continue
        takes = spec.required | spec.optional
        for arg in args:
            if arg not in takes:
                yield (
                    (*at, "args", arg),
                    f"{where}.args: '{executor} {action}' takes no argument '{arg}'"
                    f"{suggestion(arg, takes)} (it takes: {', '.join(sorted(takes))})",
                )
        for arg in sorted(spec.required - args.keys()):
            yield (
                (*at, "args"),
                f"{where}.args: missing required argument '{arg}' of '{executor} {action}'",
            )


_TYPES: dict[ParamType, tuple[type, ...]] = {
    ParamType.STRING: (str,),
    ParamType.INTEGER: (int,),
    ParamType.NUMBER: (int, float),
    ParamType.BOOLEAN: (bool,),
    ParamType.LIST: (list,),
}


def _parameter_problems(playbook: Playbook) -> Iterator[tuple[Loc, str]]:
    for name, param in playbook.parameters.items():
        at: Loc = ("parameters", name)
        default = param.default
        templated = isinstance(default, str) and LABEL_REF.search(default) is not None
        wrong_bool = isinstance(default, bool) and param.type is not ParamType.BOOLEAN
        mistyped = wrong_bool or not isinstance(default, _TYPES[param.type])
        if default is not None and not templated and mistyped:
            yield (
                (*at, "default"),
                f"parameters.{name}.default: {default!r} is not of type {param.type.value}",
            )
        if param.pattern is not None:
            try:
                re.compile(param.pattern)
            except re.error as exc:
                yield (
                    (*at, "pattern"),
                    f"parameters.{name}.pattern: bad regex {param.pattern!r}: {exc}",
                )


# --- against the rules ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    loc: Loc
    text: str


def _texts(playbook: Playbook) -> Iterator[_Text]:
    """Every text that may name labels, with where it is."""
    yield _Text(("target",), playbook.target)
    for name, param in playbook.parameters.items():
        if isinstance(param.default, str):
            yield _Text(("parameters", name, "default"), param.default)
    for at, _, _, args in _steps(playbook):
        for arg, value in args.items():
            if isinstance(value, list):
                for index, item in enumerate(value):
                    yield _Text((*at, "args", arg, index), str(item))
            else:
                yield _Text((*at, "args", arg), str(value))


class _RuleChecks:
    """The checks that need the deployment's rules (none when no rules are given)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)
        # shipped rules turned off still leave the shipped playbooks naming them valid
        self._ids = {rule.id for rule in self._rules} | (_shipped_rule_ids() if rules else set())

    def matched(self, playbook: Playbook) -> list[Rule]:
        """The rules whose incidents this playbook may run for."""
        return [
            rule
            for rule in self._rules
            if rule.suggested_playbook == playbook.id or may_apply(playbook.matches, rule)
        ]

    def problems(self, playbook: Playbook) -> Iterator[tuple[Loc, str]]:
        if not self._rules:
            return
        for index, rule_id in enumerate(playbook.matches.rules):
            if rule_id not in self._ids:
                yield (
                    ("matches", "rules", index),
                    f"matches.rules: unknown rule '{rule_id}'{suggestion(rule_id, self._ids)}",
                )
        matched = self.matched(playbook)
        if not matched:
            return
        checked = ", ".join(rule.id for rule in matched)
        for text in _texts(playbook):
            for name in dict.fromkeys(LABEL_REF.findall(text.text)):
                if name in playbook.parameters:
                    continue
                lacking = [rule.id for rule in matched if name not in produced_labels(rule)]
                if lacking:
                    yield (
                        text.loc,
                        (
                            f"{dotted(text.loc)}: '{{{name}}}' is neither a parameter nor a label "
                            f"of every matched rule: {', '.join(lacking)} "
                            f"{'does' if len(lacking) == 1 else 'do'} not produce '{name}' "
                            f"(rules checked: {checked})"
                        ),
                    )

    def suggestions(self, known: set[str]) -> Iterator[Problem]:
        """Rules whose ``suggested_playbook`` names no playbook, at that key's line."""
        for rule in self._rules:
            name = rule.suggested_playbook
            if name is None or name in known:
                continue
            yield Problem(
                rule.source_file or rule.id,
                _rule_key_line(rule, "suggested_playbook"),
                f"suggested_playbook: no playbook '{name}'{suggestion(name, known)}",
            )


def _rule_key_line(rule: Rule, key: str) -> int:
    """The line of ``key`` in ``rule``'s file (its start when the file cannot say)."""
    if not rule.source_file:
        return rule.source_line
    try:
        text = Path(rule.source_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return rule.source_line
    docs, _ = read_rule_docs(rule.source_file, text)
    for doc in docs:
        if doc.line == rule.source_line:
            return doc.line_of((key,))
    return rule.source_line


def _shipped_rule_ids() -> set[str]:
    files, _ = yaml_files([SHIPPED_RULES])
    return {str(doc.data["id"]) for file in files for doc in read_file(file)[0] if "id" in doc.data}


def _shipped_ids() -> set[str]:
    """The shipped playbooks' ids, known even when the shipped library is turned off."""
    files, _ = yaml_files([SHIPPED])
    ids: set[str] = set()
    for file in files:
        docs, _ = read_file(file, PLAYBOOKS)
        ids.update(str(doc.data["id"]) for doc in docs if "id" in doc.data)
    return ids


__all__ = [
    "SHIPPED",
    "PlaybookFileError",
    "is_playbook_file",
    "load_playbooks",
    "read_playbooks",
    "split_paths",
]
