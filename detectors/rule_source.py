"""Reading rule documents out of a YAML file while remembering the line of every key.

A file holds one rule (a mapping), a list of rules, a mapping with a top-level ``rules:`` list, or
several YAML documents, each of those shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

Loc = tuple[str | int, ...]


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


def read_rule_docs(file: str, text: str) -> tuple[list[RuleDoc], list[Problem]]:
    """Split ``text`` into rule mappings; shape problems and YAML errors come back as problems."""
    docs: list[RuleDoc] = []
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            _split(file, node, data, docs, problems)
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
    file: str, node: yaml.Node, data: Any, docs: list[RuleDoc], problems: list[Problem]
) -> None:
    if isinstance(node, yaml.MappingNode) and isinstance(data, dict) and "rules" in data:
        items_node: yaml.Node = node
        for key_node, value_node in node.value:
            if key_node.value == "rules":
                items_node = value_node
            elif key_node.value != "<<":
                problems.append(
                    Problem(
                        file,
                        _line(key_node),
                        f"unknown top-level key '{key_node.value}' (a file with 'rules:' holds"
                        " only that list)",
                    )
                )
        items = data["rules"]
        if items is None:
            return
        if not isinstance(items_node, yaml.SequenceNode) or not isinstance(items, list):
            problems.append(Problem(file, _line(items_node), "'rules' must be a list of rules"))
            return
        _items(file, items_node, items, docs, problems)
    elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        _items(file, node, data, docs, problems)
    elif isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        docs.append(_doc(file, node, data, problems))
    elif data is not None:
        problems.append(
            Problem(file, _line(node), f"expected a rule or a list of rules, got {_kind(data)}")
        )


def _items(
    file: str,
    node: yaml.SequenceNode,
    items: list[Any],
    docs: list[RuleDoc],
    problems: list[Problem],
) -> None:
    for item_node, item in zip(node.value, items, strict=True):
        if isinstance(item_node, yaml.MappingNode) and isinstance(item, dict):
            docs.append(_doc(file, item_node, item, problems))
        else:
            problems.append(
                Problem(file, _line(item_node), f"a rule must be a mapping, got {_kind(item)}")
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
