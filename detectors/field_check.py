"""Warnings for rules that group by (or threshold on) a field nothing can produce.

A rule's ``group_by`` and threshold fields come from the events (the sourcetype's extractions,
see docs/field-extraction.md) or from the query itself (``eval``, ``rex``, ``spath``,
``stats … as``, ``rename``, ``bin … as``). When the query names sourcetypes whose extractions
are known and none of them, nor the query, can make the field, every event would fall into one
group whose title reads "src unknown": ``validate`` says so as a warning (the events may still
carry the field as a ``key=value`` pair, so it is not an error).

Sourcetypes without shipped or configured extractions (``metrics``, a custom ``app:log``) are
not checked: their fields are whatever ``key=value`` pairs their lines carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from detectors.fields import ANY_FIELD, FieldExtractor, producible_fields
from detectors.model import Rule
from detectors.spl import SplError, parse
from detectors.spl import nodes as ast

_BUILTIN = frozenset(("_time", "_raw", "index", "sourcetype", "source", "host", "count"))


def field_warnings(rule: Rule, extractor: FieldExtractor | None = None) -> list[str]:
    """What ``rule`` groups by or thresholds on that neither its query nor its sourcetypes'
    extractions can produce, one message per field; [] when the query cannot be parsed or
    names no sourcetype with known extractions."""
    try:
        pipeline = parse(rule.query)
    except SplError:
        return []
    first = pipeline.commands[0]
    if not isinstance(first, ast.SearchCommand):
        return []
    sourcetypes = sorted(set(_sourcetypes(first.expr)))
    if not sourcetypes:
        return []
    available: set[str] = set(_BUILTIN) | set(_searched_fields(first.expr))
    for sourcetype in sourcetypes:
        found = producible_fields(sourcetype, extractor)
        if not found or ANY_FIELD in found:
            return []  # unknown format (key=value pairs) or JSON: anything may appear
        available |= found
    made = _made_fields(pipeline.commands[1:])
    if made is None:
        return []
    available |= made
    warnings = []
    for loc, name in rule.result_fields():
        if name in available:
            continue
        where = "group_by" if loc[0] == "group_by" else ".".join(str(part) for part in loc)
        warnings.append(
            f"{where}: field '{name}' is made neither by the query (eval, rex, spath, stats … "
            f"as, rename) nor by the extractions of sourcetype {', '.join(sourcetypes)}: "
            f"unless the events carry it as {name}=…, every event falls into one group "
            f"('{name} unknown')"
        )
    return warnings


def _nodes(node: ast.SearchNode | None) -> Iterator[ast.SearchNode]:
    """The nodes of a search clause that must hold (not under a NOT)."""
    if node is None or isinstance(node, ast.Not):
        return
    yield node
    if isinstance(node, ast.And | ast.Or):
        for item in node.items:
            yield from _nodes(item)


def _sourcetypes(node: ast.SearchNode | None) -> Iterator[str]:
    for item in _nodes(node):
        if isinstance(item, ast.FieldMatch) and item.field == "sourcetype" and item.op == "=":
            yield item.value
        elif isinstance(item, ast.FieldIn) and item.field == "sourcetype":
            yield from item.values


def _searched_fields(node: ast.SearchNode | None) -> Iterator[str]:
    """Fields the search clause requires (``EventCode=4625``): events that match have them."""
    for item in _nodes(node):
        if isinstance(item, ast.FieldMatch | ast.FieldIn):
            yield item.field


def _made_fields(commands: tuple[object, ...]) -> set[str] | None:
    """The fields the commands after the search create; None when any field may appear."""
    made: set[str] = set()
    for command in commands:
        if isinstance(command, ast.EvalCommand):
            made |= {name for name, _ in command.assignments}
        elif isinstance(command, ast.RenameCommand):
            made |= {target for _, target in command.pairs}
        elif isinstance(command, ast.StatsCommand):
            made |= {aggregation.name for aggregation in command.aggregations}
        elif isinstance(command, ast.BinCommand) and command.alias:
            made.add(command.alias)
        else:
            found = _other_outputs(command)
            if found is None:
                return None
            made |= found
    return made


def _other_outputs(command: object) -> set[str] | None:
    """Outputs of ``rex``, ``spath``, ``eventstats``, ``streamstats``, ``top`` (by attribute,
    so a command the engine adds later is read the same way)."""
    regex = getattr(command, "regex", None)
    if type(command).__name__ == "RexCommand" and isinstance(regex, str):
        try:
            return set(re.compile(regex).groupindex)
        except re.error:
            return set()
    if type(command).__name__ == "SpathCommand":
        output = getattr(command, "output", None) or getattr(command, "path", None)
        return None if output is None else {str(output)}
    stats = getattr(command, "stats", None)
    if isinstance(stats, ast.StatsCommand):
        return {aggregation.name for aggregation in stats.aggregations}
    outputs = {
        str(value)
        for name in ("countfield", "percentfield")
        if (value := getattr(command, name, None))
    }
    return outputs
