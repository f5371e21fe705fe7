"""Reading rule (and playbook) documents out of YAML files while remembering the line of every
key, and describing validation errors as ``file:line: message``.

A file holds one document (a mapping), a list of them, a mapping with a top-level ``rules:`` (or,
for playbooks, ``playbooks:``) list, or several YAML documents, each of those shapes.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a rule file, shown as ``file:line: message`` (lines count from 1)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class RuleDoc:
    """One rule's mapping as read from YAML, with the line where it starts and of each key."""

    data: dict[str, Any]
    line: int
    lines: Mapping[Loc, int]

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest key along ``loc`` the file has (the rule's start otherwise)."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return self.line


@dataclass(frozen=True, slots=True)
class Shape:
    """What a file holds: ``noun`` documents, listed under ``list_key`` when there are several."""

    noun: str = "rule"
    list_key: str = "rules"


RULES = Shape()


def read_rule_docs(
    file: str, text: str, shape: Shape = RULES
) -> tuple[list[RuleDoc], list[Problem]]:
    """Split ``text`` into rule (or ``shape``) mappings; shape problems and YAML errors come back
    as problems."""
    docs: list[RuleDoc] = []
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            _split(file, node, data, docs, problems, shape)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.problem and exc.context and exc.context_mark is not None:
            message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        problems.append(Problem(file, line, message))
    except yaml.YAMLError as exc:
        problems.append(Problem(file, 1, f"invalid YAML: {exc}"))
    finally:
        loader.dispose()
    return docs, problems


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _split(
    file: str,
    node: yaml.Node,
    data: Any,
    docs: list[RuleDoc],
    problems: list[Problem],
    shape: Shape,
) -> None:
    key, noun = shape.list_key, shape.noun
    if isinstance(node, yaml.MappingNode) and isinstance(data, dict) and key in data:
        items_node: yaml.Node = node
        for key_node, value_node in node.value:
            if key_node.value == key:
                items_node = value_node
            elif key_node.value != "<<":
                problems.append(
                    Problem(
                        file,
                        _line(key_node),
                        f"unknown top-level key '{key_node.value}' (a file with '{key}:' holds"
                        " only that list)",
                    )
                )
        items = data[key]
        if items is None:
            return
        if not isinstance(items_node, yaml.SequenceNode) or not isinstance(items, list):
            problems.append(Problem(file, _line(items_node), f"'{key}' must be a list of {key}"))
            return
        _items(file, items_node, items, docs, problems, noun)
    elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        _items(file, node, data, docs, problems, noun)
    elif isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        docs.append(_doc(file, node, data, problems))
    elif data is not None:
        problems.append(
            Problem(file, _line(node), f"expected a {noun} or a list of {key}, got {_kind(data)}")
        )


def _items(
    file: str,
    node: yaml.SequenceNode,
    items: list[Any],
    docs: list[RuleDoc],
    problems: list[Problem],
    noun: str,
) -> None:
    for item_node, item in zip(node.value, items, strict=True):
        if isinstance(item_node, yaml.MappingNode) and isinstance(item, dict):
            docs.append(_doc(file, item_node, item, problems))
        else:
            problems.append(
                Problem(file, _line(item_node), f"a {noun} must be a mapping, got {_kind(item)}")
            )


def _doc(
    file: str, node: yaml.MappingNode, data: dict[str, Any], problems: list[Problem]
) -> RuleDoc:
    lines: dict[Loc, int] = {}
    _record(file, node, (), lines, problems)
    return RuleDoc(data=data, line=_line(node), lines=lines)


def _record(
    file: str, node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[Problem]
) -> None:
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            if key in first:
                problems.append(
                    Problem(
                        file,
                        _line(key_node),
                        f"duplicate key '{dotted((*loc, key))}' (first at line {first[key]})",
                    )
                )
                continue
            first[key] = _line(key_node)
            lines[(*loc, key)] = _line(key_node)
            _record(file, value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = _line(item)
            _record(file, item, (*loc, index), lines, problems)


def dotted(loc: Loc) -> str:
    """``threshold.op``, ``group_by.1``: a key path as rule messages spell it."""
    return ".".join(str(part) for part in loc)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"the value {value!r}"


def read_file(file: Path, shape: Shape = RULES) -> tuple[list[RuleDoc], list[Problem]]:
    """:func:`read_rule_docs` of a file; an unreadable file is one problem (line 0)."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [], [Problem(str(file), 0, "not UTF-8 text")]
    except OSError as exc:
        return [], [Problem(str(file), 0, f"cannot read: {exc.strerror or exc}")]
    return read_rule_docs(str(file), text, shape)


def yaml_files(roots: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """The ``*.yaml``/``*.yml`` files of ``roots`` (files, or folders searched recursively), each
    once, in order; a root that does not exist is a problem."""
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for root in roots:
        if root.is_dir():
            found = sorted(
                path for path in root.rglob("*") if path.suffix in YAML_SUFFIXES and path.is_file()
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


def suggestion(word: str, known: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def without_hidden(
    doc: RuleDoc, hidden: Collection[str], report: Callable[[Loc, str], None]
) -> dict[str, Any]:
    """The document's keys less ``hidden`` ones (the loader sets them, a file may not): each
    one the file writes is reported as an unknown key."""
    data = dict(doc.data)
    for name in hidden:
        if name in data:
            report((name,), f"unknown key '{name}'")
            del data[name]
    return data


def error_loc(error: ErrorDetails) -> Loc:
    """Where an error is: a model-level check's ``at`` (see ``rule_error``) or its own loc."""
    at = (error.get("ctx") or {}).get("at")
    return tuple(at) if at else tuple(error["loc"])


def describe_error(
    error: ErrorDetails, model: type[BaseModel], hidden: Collection[str] = ()
) -> str:
    """A pydantic error as a file message: ``unknown key 'verify.wiat' (did you mean
    'verify.wait'?)``, ``missing required key 'steps'``, ``cooldown: bad duration …``.
    ``hidden``: fields a file may not write (never suggested)."""
    loc = error_loc(error)
    where = dotted(loc)
    if error["type"] == "extra_forbidden":
        parent, key = loc[:-1], str(loc[-1])
        close = difflib.get_close_matches(key, keys_at(model, parent, hidden), n=1, cutoff=0.6)
        hint = f" (did you mean '{dotted((*parent, close[0]))}'?)" if close else ""
        return f"unknown key '{where}'{hint}"
    if error["type"] == "missing":
        return f"missing required key '{where}'"
    if error["type"] == "rule_value":
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    message = error["msg"][:1].lower() + error["msg"][1:]
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {value!r})"
    return f"{where}: {message}"


def keys_at(model: type[BaseModel], loc: Loc, hidden: Collection[str] = ()) -> list[str]:
    """The keys a file may write at ``loc`` inside ``model``, following nested models through
    their fields, list or tuple items (``steps.0``) and mapping values (``parameters.name``)."""
    annotation: Any = model
    for part in loc:
        current = _nested_model(annotation)
        if isinstance(part, str) and current is not None:
            if part not in current.model_fields:
                return []
            annotation = current.model_fields[part].annotation
            continue
        annotation = _item_annotation(annotation, part)
        if annotation is None:
            return []
    current = _nested_model(annotation)
    if current is None:
        return []
    return [name for name in current.model_fields if name not in hidden]


def _item_annotation(annotation: Any, part: str | int) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(part, int) and origin in (list, tuple) and args:
        return args[0]
    if isinstance(part, str) and origin is dict and len(args) == 2:
        return args[1]
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            found = _item_annotation(arg, part)
            if found is not None:
                return found
    return None


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
