"""Parses a query into its commands: the initial search clause, then one command per pipe."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from detectors.spl.args import (
    parse_bin,
    parse_dedup,
    parse_fields,
    parse_head,
    parse_rename,
    parse_sort,
    parse_stats,
    parse_table,
)
from detectors.spl.args_more import (
    parse_eventstats,
    parse_rare,
    parse_regex,
    parse_rex,
    parse_spath,
    parse_streamstats,
    parse_top,
)
from detectors.spl.exprs import SearchParser, parse_expression
from detectors.spl.lexer import (
    COMMA,
    FIELD,
    OP,
    STRING,
    WORD,
    Segment,
    TokenStream,
    split_pipes,
    tokenize_expr,
    tokenize_words,
)
from detectors.spl.nodes import (
    And,
    Command,
    EvalCommand,
    FieldIn,
    FieldMatch,
    Not,
    SearchCommand,
    SearchNode,
    SplError,
    Term,
    WhereCommand,
)
from detectors.spl.time import resolve_time

SUPPORTED_COMMANDS = (
    "search",
    "where",
    "eval",
    "stats",
    "sort",
    "head",
    "table",
    "bin",
    "bucket",
    "rename",
    "fields",
    "dedup",
    "rex",
    "regex",
    "spath",
    "eventstats",
    "streamstats",
    "top",
    "rare",
)
TIME_MODIFIERS = ("earliest", "latest")

_NAME_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_SEARCH_KEYWORD_RE = re.compile(r"\s*search(?=\s|$)", re.IGNORECASE)


def parse_commands(text: str) -> tuple[Command, ...]:
    """The commands of ``text``; raises SplError naming the position of the first problem."""
    if not text.strip():
        raise SplError("empty search", 0, "expected a search clause such as 'index=main error'")
    segments = split_pipes(text)
    first, rest = segments[0], segments[1:]
    commands: list[Command] = []
    if first.text.strip():
        m = _SEARCH_KEYWORD_RE.match(first.text)
        if m:
            first = Segment(first.text[m.end() :], first.offset + m.end())
        commands.append(_parse_search(first, initial=True))
    else:
        name, position, args = _command_name(rest[0], len(rest) == 1)
        if name != "search":
            if name in SUPPORTED_COMMANDS:
                raise SplError(f"'{name}' cannot start a search", position, _EXPECT_SEARCH)
            raise _unsupported(name, position)
        commands.append(_parse_search(args, initial=True))
        rest = rest[1:]
    for index, segment in enumerate(rest):
        name, position, args = _command_name(segment, index == len(rest) - 1)
        parser = _PARSERS.get(name)
        if parser is None:
            raise _unsupported(name, position)
        commands.append(parser(args, position))
    return tuple(commands)


_EXPECT_SEARCH = "begin with a search clause, e.g. 'index=main | stats count'"


def _unsupported(name: str, position: int) -> SplError:
    return SplError(
        f"unsupported command '{name}'", position, "supported: " + ", ".join(SUPPORTED_COMMANDS)
    )


def _command_name(segment: Segment, last: bool) -> tuple[str, int, Segment]:
    m = _NAME_RE.match(segment.text)
    if m is None:
        stripped = len(segment.text) - len(segment.text.lstrip())
        position = segment.offset + stripped
        found = segment.text.strip()[:1]
        what = f"'{found}'" if found else "'|'" if not last else "end of query"
        raise SplError(f"expected a command name after '|', found {what}", position)
    rest = Segment(segment.text[m.end() :], segment.offset + m.end())
    return m.group(1).lower(), segment.offset + m.start(1), rest


# --- search ---------------------------------------------------------------------------------


def _parse_search(segment: Segment, *, initial: bool, position: int | None = None) -> SearchCommand:
    stream = TokenStream(tokenize_words(segment, comparisons=True))
    expr = SearchParser(stream).parse()
    at = segment.offset if position is None else position
    if not initial:
        _refuse_time_modifiers(expr, "in a later '| search'; put it in the first search clause")
        return SearchCommand(expr, at)
    top = list(expr.items) if isinstance(expr, And) else ([] if expr is None else [expr])
    found: dict[str, str] = {}
    kept: list[SearchNode] = []
    for node in top:
        if isinstance(node, FieldMatch) and node.field.lower() in TIME_MODIFIERS:
            name = node.field.lower()
            if node.op != "=":
                raise SplError(f"'{name}' takes '=', not '{node.op}'", node.position)
            try:
                resolve_time(node.value, datetime.now(UTC))
            except ValueError:
                raise SplError(
                    f"invalid time '{node.value}' for {name}",
                    node.position,
                    "use e.g. -15m, -1h@h, @d, now or epoch seconds",
                ) from None
            found[name] = node.value
        else:
            kept.append(node)
    rest: SearchNode | None = None
    if kept:
        rest = kept[0] if len(kept) == 1 else And(tuple(kept))
    _refuse_time_modifiers(rest, "inside OR or NOT; use it as a top-level term")
    return SearchCommand(rest, at, found.get("earliest"), found.get("latest"))


def _refuse_time_modifiers(node: SearchNode | None, where: str) -> None:
    if node is None or isinstance(node, Term):
        return
    if isinstance(node, FieldMatch | FieldIn):
        if node.field.lower() in TIME_MODIFIERS:
            raise SplError(f"'{node.field.lower()}' is not allowed {where}", node.position)
        return
    if isinstance(node, Not):
        _refuse_time_modifiers(node.item, where)
        return
    for item in node.items:
        _refuse_time_modifiers(item, where)


def _search(args: Segment, position: int) -> SearchCommand:
    return _parse_search(args, initial=False, position=position)


# --- eval and where -------------------------------------------------------------------------


def _where(args: Segment, position: int) -> WhereCommand:
    stream = TokenStream(tokenize_expr(args))
    if stream.at_end():
        stream.fail("expected an expression after 'where'")
    expr = parse_expression(stream)
    if not stream.at_end():
        stream.fail("expected an operator or end of where")
    return WhereCommand(expr, position)


def _eval(args: Segment, position: int) -> EvalCommand:
    stream = TokenStream(tokenize_expr(args))
    assignments = []
    while True:
        tok = stream.peek()
        if tok.kind not in (WORD, FIELD, STRING):
            stream.fail("expected a field name to assign")
        stream.next()
        stream.expect(OP, "'=' after the field name", "=")
        if stream.at_end() or stream.at(COMMA):
            stream.fail(f"expected an expression for '{tok.value}'")
        assignments.append((tok.value, parse_expression(stream)))
        if stream.accept(COMMA):
            continue
        if stream.at_end():
            break
        stream.fail("expected an operator, ',' or end of eval")
    return EvalCommand(tuple(assignments), position)


_PARSERS: dict[str, Callable[[Segment, int], Command]] = {
    "search": _search,
    "where": _where,
    "eval": _eval,
    "stats": parse_stats,
    "sort": parse_sort,
    "head": parse_head,
    "table": parse_table,
    "bin": parse_bin,
    "bucket": parse_bin,
    "rename": parse_rename,
    "fields": parse_fields,
    "dedup": parse_dedup,
    "rex": parse_rex,
    "regex": parse_regex,
    "spath": parse_spath,
    "eventstats": parse_eventstats,
    "streamstats": parse_streamstats,
    "top": parse_top,
    "rare": parse_rare,
}
