"""Parsers of the commands whose arguments are words: stats, sort, head, table, bin, rename,
fields and dedup."""

from __future__ import annotations

import re
import sys

from detectors.spl.lexer import (
    COMMA,
    EOF,
    LPAREN,
    OP,
    RPAREN,
    STRING,
    WORD,
    Segment,
    TokenStream,
    tokenize_words,
)
from detectors.spl.nodes import (
    Aggregation,
    BinCommand,
    DedupCommand,
    FieldsCommand,
    HeadCommand,
    RenameCommand,
    SortCommand,
    SortKey,
    SplError,
    StatsCommand,
    TableCommand,
)
from detectors.spl.time import parse_span

DEFAULT_SORT_LIMIT = 10_000


def _words(args: Segment) -> TokenStream:
    return TokenStream(tokenize_words(args, comparisons=False))


def _field_name(stream: TokenStream, what: str = "a field name") -> str:
    """A field name; ``sum(bytes)`` written without spaces is one name, as stats makes it."""
    tok = stream.peek()
    if tok.kind not in (WORD, STRING):
        stream.fail(f"expected {what}")
    stream.next()
    name = tok.value
    glued = stream.peek().position == tok.position + len(name)
    if tok.kind == WORD and stream.at(LPAREN) and glued:
        stream.next()
        inner = stream.peek()
        if inner.kind != WORD:
            stream.fail("expected a field name inside '(...)'")
        stream.next()
        stream.expect(RPAREN, "')'")
        name = f"{name}({inner.value})"
    return name


def _field_list(stream: TokenStream, command: str, stop: tuple[str, ...] = ()) -> list[str]:
    names: list[str] = []
    while not stream.at_end() and not stream.at_keyword(*stop):
        if stream.accept(COMMA):
            continue
        if stream.peek(1).kind == OP:
            break
        names.append(_field_name(stream))
    if not names:
        stream.fail(f"expected a field name after '{command}'")
    return names


def _end(stream: TokenStream, command: str) -> None:
    if not stream.at_end():
        stream.fail(f"unexpected argument to '{command}'")


def _whole(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _integer(stream: TokenStream, what: str) -> int:
    tok = stream.peek()
    if tok.kind != WORD or not _whole(tok.value):
        stream.fail(f"expected {what}")
    stream.next()
    return int(tok.value)


def _option(stream: TokenStream) -> tuple[str, str, int] | None:
    """A ``name=value`` argument, if the stream is at one."""
    if stream.at(WORD) and stream.peek(1).kind == OP:
        name = stream.next()
        stream.next()
        value = stream.peek()
        if value.kind not in (WORD, STRING):
            stream.fail(f"expected a value for '{name.value}'")
        stream.next()
        return name.value.lower(), value.value, name.position
    return None


_STATS_FUNCS = {
    "count": "count",
    "c": "count",
    "dc": "dc",
    "distinct_count": "dc",
    "sum": "sum",
    "avg": "avg",
    "mean": "avg",
    "min": "min",
    "max": "max",
    "range": "range",
    "median": "median",
    "stdev": "stdev",
    "var": "var",
    "values": "values",
    "list": "list",
    "first": "first",
    "last": "last",
    "earliest": "earliest",
    "latest": "latest",
}
_PERCENTILE_RE = re.compile(
    r"(?:perc|p|exactperc|upperperc)(\d+(?:\.\d+)?)", re.IGNORECASE | re.ASCII
)


def parse_stats(args: Segment, position: int, command: str = "stats") -> StatsCommand:
    stream = _words(args)
    aggregations: list[Aggregation] = []
    while not stream.at_end() and not stream.at_keyword("by"):
        if stream.accept(COMMA):
            continue
        tok = stream.peek()
        if tok.kind != WORD:
            stream.fail("expected a stats function such as count")
        stream.next()
        written = tok.value
        func = _STATS_FUNCS.get(written.lower())
        percentile = None
        if func is None and (m := _PERCENTILE_RE.fullmatch(written)):
            func, percentile = "perc", float(m.group(1))
            if percentile > 100:
                raise SplError(f"percentile above 100 in '{written}'", tok.position)
        if func is None:
            raise SplError(
                f"unsupported stats function '{written}'",
                tok.position,
                "supported: " + ", ".join([*_STATS_FUNCS, "perc<N>"]),
            )
        field = None
        if stream.accept(LPAREN):
            if stream.at_keyword("eval"):
                raise SplError(
                    "eval(...) inside stats is not supported",
                    stream.peek().position,
                    "compute the field with '| eval' before stats",
                )
            inner = stream.peek()
            if inner.kind not in (WORD, STRING):
                stream.fail(f"expected a field name in {written}(...)")
            stream.next()
            stream.expect(RPAREN, "')'")
            field = inner.value
        elif func != "count":
            raise SplError(f"'{written}' needs a field, e.g. {written}(bytes)", tok.position)
        name = written if field is None else f"{written}({field})"
        if stream.at_keyword("as"):
            stream.next()
            name = _field_name(stream, "a name after 'as'")
        aggregations.append(Aggregation(func, field, name, percentile))
    if not aggregations:
        stream.fail("expected a stats function such as count")
    by: list[str] = []
    if stream.at_keyword("by"):
        stream.next()
        by = _field_list(stream, "by")
    _end(stream, command)
    return StatsCommand(tuple(aggregations), tuple(by), position)


def parse_sort(args: Segment, position: int) -> SortCommand:
    stream = _words(args)
    limit: int | None = DEFAULT_SORT_LIMIT
    if stream.at(WORD) and _whole(stream.peek().value):
        limit = _integer(stream, "a limit")
    elif stream.at_keyword("limit") and stream.peek(1).kind == OP:
        option = _option(stream)
        assert option is not None
        if not _whole(option[1]):
            raise SplError("limit= takes a whole number", option[2])
        limit = int(option[1])
    keys: list[SortKey] = []
    while not stream.at_end():
        if stream.accept(COMMA):
            continue
        if stream.at_keyword("desc", "d") and stream.peek(1).kind == EOF and keys:
            stream.next()
            keys = [SortKey(k.field, not k.descending, k.mode) for k in keys]
            break
        tok = stream.peek()
        if tok.kind not in (WORD, STRING):
            stream.fail("expected a field to sort by")
        descending = False
        word = tok.value
        if tok.kind == WORD and word.startswith(("+", "-")):
            descending = word[0] == "-"
            stream.next()
            word = word[1:]
            if not word:
                tok = stream.peek()
                if tok.kind not in (WORD, STRING):
                    stream.fail("expected a field after the sort direction")
                stream.next()
                word = tok.value
        else:
            stream.next()
        mode = "auto"
        if word.lower() in ("num", "str", "auto", "ip") and stream.at(LPAREN):
            stream.next()
            mode = "str" if word.lower() == "str" else "num" if word.lower() == "num" else "auto"
            word = _field_name(stream)
            stream.expect(RPAREN, "')'")
        elif stream.at(LPAREN) and stream.peek().position == tok.position + len(tok.value):
            stream.next()
            inner = _field_name(stream)
            stream.expect(RPAREN, "')'")
            word = f"{word}({inner})"
        keys.append(SortKey(word, descending, mode))
    if not keys:
        stream.fail("expected a field to sort by")
    return SortCommand(tuple(keys), limit or None, position)


def parse_head(args: Segment, position: int) -> HeadCommand:
    stream = _words(args)
    limit = 10
    if stream.at_keyword("limit") and stream.peek(1).kind == OP:
        option = _option(stream)
        assert option is not None
        if not _whole(option[1]):
            raise SplError("limit= takes a whole number", option[2])
        limit = int(option[1])
    elif not stream.at_end():
        limit = _integer(stream, "a number of results")
    _end(stream, "head")
    return HeadCommand(min(limit, sys.maxsize), position)


def parse_table(args: Segment, position: int) -> TableCommand:
    stream = _words(args)
    fields = _field_list(stream, "table")
    _end(stream, "table")
    return TableCommand(tuple(fields), position)


def parse_bin(args: Segment, position: int) -> BinCommand:
    stream = _words(args)
    span: tuple[float, bool] | None = None
    field: str | None = None
    alias: str | None = None
    while not stream.at_end():
        option = _option(stream)
        if option is not None:
            name, value, at = option
            if name != "span":
                raise SplError(f"unsupported bin option '{name}'", at, "only span= is supported")
            try:
                span = parse_span(value)
            except ValueError as exc:
                raise SplError(f"invalid span '{value}': {exc}", at) from None
            continue
        if stream.at_keyword("as") and field is not None:
            stream.next()
            alias = _field_name(stream, "a name after 'as'")
            continue
        if field is not None:
            stream.fail("unexpected argument to 'bin'")
        field = _field_name(stream)
    if field is None:
        raise SplError("bin needs a field, e.g. 'bin _time span=5m'", position)
    if span is None:
        raise SplError("bin needs span=, e.g. 'bin _time span=5m'", position)
    size, is_time = span
    return BinCommand(field, size, is_time or field == "_time", alias, position)


def parse_rename(args: Segment, position: int) -> RenameCommand:
    stream = _words(args)
    pairs: list[tuple[str, str]] = []
    while not stream.at_end():
        if stream.accept(COMMA):
            continue
        at = stream.peek().position
        source = _field_name(stream)
        if not stream.at_keyword("as"):
            stream.fail(f"expected 'as' after '{source}'")
        stream.next()
        target = _field_name(stream, "a new name after 'as'")
        if source.count("*") > 1 or source.count("*") != target.count("*"):
            raise SplError("rename wildcards must be one '*' on both sides", at)
        pairs.append((source, target))
    if not pairs:
        stream.fail("expected 'field as newname'")
    return RenameCommand(tuple(pairs), position)


def parse_fields(args: Segment, position: int) -> FieldsCommand:
    stream = _words(args)
    remove = False
    tok = stream.peek()
    if tok.kind == WORD and tok.value.startswith(("+", "-")):
        remove = tok.value[0] == "-"
        if tok.value in ("+", "-"):
            stream.next()
    names: list[str] = []
    first = True
    while not stream.at_end():
        if stream.accept(COMMA):
            continue
        name = _field_name(stream)
        if first and name.startswith(("+", "-")):
            name = name[1:]
        first = False
        names.append(name)
    if not names:
        stream.fail("expected a field name after 'fields'")
    return FieldsCommand(remove, tuple(names), position)


def parse_dedup(args: Segment, position: int) -> DedupCommand:
    stream = _words(args)
    keep = 1
    keepempty = False
    if stream.at(WORD) and _whole(stream.peek().value):
        keep = _integer(stream, "a count")
        if keep < 1:
            raise SplError("dedup count must be at least 1", position)
    names: list[str] = []
    while not stream.at_end():
        if stream.accept(COMMA):
            continue
        option = _option(stream)
        if option is not None:
            name, value, at = option
            if name != "keepempty":
                raise SplError(
                    f"unsupported dedup option '{name}'", at, "only keepempty= is supported"
                )
            keepempty = value.lower() in ("true", "t", "1", "yes")
            continue
        names.append(_field_name(stream))
    if not names:
        raise SplError("dedup needs at least one field", position)
    return DedupCommand(tuple(names), keep, keepempty, position)
