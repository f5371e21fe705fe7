"""Parsers of rex, regex, spath, eventstats, streamstats, top and rare."""

from __future__ import annotations

import re

from detectors.fields.jsonpath import check_path
from detectors.fields.model import python_regex
from detectors.spl.args import _field_list, _option, _whole, _words, parse_stats
from detectors.spl.lexer import STRING, WORD, Segment, Token, _read_string
from detectors.spl.nodes import (
    EventstatsCommand,
    RegexCommand,
    RexCommand,
    SpathCommand,
    SplError,
    StreamstatsCommand,
    TopCommand,
)


def _compile(text: str, at: int, command: str) -> re.Pattern[str]:
    """``text`` as a regex (PCRE named groups accepted); SplError pointing into the query."""
    try:
        return re.compile(python_regex(text))
    except re.error as exc:
        offset = at + 1 + (exc.pos or 0)
        raise SplError(
            f"invalid regex in '{command}': {exc.msg}",
            offset,
            'the regex is Perl-compatible, e.g. "from (?<src>\\S+) port"',
        ) from None


def _flag(value: str, name: str, at: int) -> bool:
    lowered = value.lower()
    if lowered in ("true", "t", "1", "yes"):
        return True
    if lowered in ("false", "f", "0", "no"):
        return False
    raise SplError(f"{name}= takes true or false, not '{value}'", at)


def _count(value: str, name: str, at: int) -> int:
    if not _whole(value):
        raise SplError(f"{name}= takes a whole number, not '{value}'", at)
    return int(value)


# --- rex ------------------------------------------------------------------------------------


def parse_rex(args: Segment, position: int) -> RexCommand:
    stream = _words(args)
    field = "_raw"
    max_match = 1
    regex: Token | None = None
    while not stream.at_end():
        option = _option(stream)
        if option is not None:
            name, value, at = option
            if name == "field":
                field = value
            elif name == "max_match":
                max_match = _count(value, "max_match", at)
            elif name == "mode":
                if value.lower() != "sed":
                    raise SplError(f"unknown rex mode '{value}'", at, "rex only extracts")
                raise SplError(
                    "rex mode=sed is not supported",
                    at,
                    "rewrite the value with eval instead, e.g. "
                    '\'| eval f=replace(f, "\\d{4}", "xxxx")\'',
                )
            elif name == "offset_field":
                raise SplError("rex offset_field= is not supported", at)
            else:
                raise SplError(
                    f"unsupported rex option '{name}'", at, "supported: field=, max_match="
                )
            continue
        tok = stream.peek()
        if tok.kind != STRING:
            stream.fail("expected a regex in double quotes or field=/max_match=")
        if regex is not None:
            stream.fail("rex takes one regex")
        regex = stream.next()
    if regex is None:
        raise SplError(
            "rex needs a regex in double quotes",
            position,
            "e.g. '| rex \"from (?<src>\\S+) port\"'",
        )
    compiled = _compile(regex.value, regex.position, "rex")
    if not compiled.groupindex:
        raise SplError(
            "the rex regex has no named group, so it extracts nothing",
            regex.position,
            "name what it captures, e.g. (?<src>\\S+)",
        )
    return RexCommand(field, compiled.pattern, max_match, position)


# --- regex ----------------------------------------------------------------------------------

_REGEX_HEAD_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.:{}@-]*)\s*(!=|=)\s*")


def parse_regex(args: Segment, position: int) -> RegexCommand:
    text = args.text
    field, negate, start = "_raw", False, 0
    m = _REGEX_HEAD_RE.match(text)
    if m is not None:
        field, negate, start = m.group(1), m.group(2) == "!=", m.end()
    body = text[start:]
    lead = len(body) - len(body.lstrip())
    at = args.offset + start + lead
    body = body.strip()
    if not body:
        raise SplError(
            "regex needs a regular expression",
            position,
            "e.g. '| regex _raw=\"Failed \\w+ for\"' or '| regex src!=\"^10\\.\"'",
        )
    if body.startswith('"'):
        try:
            value, end = _read_string(body, 0, '"')
        except SplError as exc:
            raise SplError(exc.reason, at + exc.position) from None
        if body[end:].strip():
            raise SplError("unexpected text after the regex", at + end)
    else:
        value = body
    compiled = _compile(value, at if body.startswith('"') else at - 1, "regex")
    return RegexCommand(field, negate, compiled.pattern, position)


# --- spath ----------------------------------------------------------------------------------


def parse_spath(args: Segment, position: int) -> SpathCommand:
    stream = _words(args)
    input_field = "_raw"
    output: str | None = None
    path: str | None = None
    path_at = position
    while not stream.at_end():
        option = _option(stream)
        if option is not None:
            name, value, at = option
            if name == "input":
                input_field = value
            elif name == "output":
                output = value
            elif name == "path":
                path, path_at = value, at
            else:
                raise SplError(
                    f"unsupported spath option '{name}'", at, "supported: input=, output=, path="
                )
            continue
        tok = stream.peek()
        if tok.kind not in (WORD, STRING) or path is not None:
            stream.fail("unexpected argument to 'spath'")
        stream.next()
        path, path_at = tok.value, tok.position
    if path is not None:
        try:
            check_path(path)
        except ValueError as exc:
            raise SplError(str(exc), path_at) from None
    elif output is not None:
        raise SplError(
            "spath output= needs a path", position, "e.g. 'spath output=user path=user.name'"
        )
    return SpathCommand(input_field, output, path, position)


# --- eventstats, streamstats ----------------------------------------------------------------


def parse_eventstats(args: Segment, position: int) -> EventstatsCommand:
    return EventstatsCommand(parse_stats(args, position, "eventstats"), position)


_STREAMSTATS_REFUSED = ("reset_on_change", "reset_before", "reset_after", "time_window", "allnum")


def parse_streamstats(args: Segment, position: int) -> StreamstatsCommand:
    stream = _words(args)
    current, window = True, 0
    while True:
        option = _option(stream)
        if option is None:
            break
        name, value, at = option
        if name == "current":
            current = _flag(value, "current", at)
        elif name == "window":
            window = _count(value, "window", at)
        elif name == "global":
            _flag(value, "global", at)
        elif name in _STREAMSTATS_REFUSED:
            raise SplError(f"streamstats {name}= is not supported", at)
        else:
            raise SplError(
                f"unsupported streamstats option '{name}'",
                at,
                "supported: current=, window=, global=",
            )
    start = stream.peek().position - args.offset
    rest = Segment(args.text[start:], args.offset + start)
    return StreamstatsCommand(parse_stats(rest, position, "streamstats"), current, window, position)


# --- top, rare ------------------------------------------------------------------------------


def _parse_top(args: Segment, position: int, rare: bool) -> TopCommand:
    command = "rare" if rare else "top"
    stream = _words(args)
    limit = 10
    countfield: str | None = "count"
    percentfield: str | None = "percent"
    showcount = showperc = True
    fields: list[str] = []
    by: list[str] = []
    if stream.at(WORD) and _whole(stream.peek().value):
        limit = int(stream.next().value)
    while not stream.at_end():
        option = _option(stream)
        if option is not None:
            name, value, at = option
            if name == "limit":
                limit = _count(value, "limit", at)
            elif name == "countfield":
                countfield = value
            elif name == "percentfield":
                percentfield = value
            elif name == "showcount":
                showcount = _flag(value, "showcount", at)
            elif name == "showperc":
                showperc = _flag(value, "showperc", at)
            elif name == "useother" and not _flag(value, "useother", at):
                pass
            else:
                raise SplError(
                    f"unsupported {command} option '{name}'",
                    at,
                    "supported: limit=, countfield=, percentfield=, showcount=, showperc=",
                )
            continue
        if stream.at_keyword("by"):
            stream.next()
            by = _field_list(stream, "by")
            continue
        if by:
            stream.fail(f"unexpected argument to '{command}'")
        fields.extend(_field_list(stream, command, ("by",)))
    if not fields:
        raise SplError(f"{command} needs a field", position, f"e.g. '| {command} src'")
    return TopCommand(
        tuple(fields),
        tuple(by),
        limit,
        countfield if showcount else None,
        percentfield if showperc else None,
        rare,
        position,
    )


def parse_top(args: Segment, position: int) -> TopCommand:
    return _parse_top(args, position, rare=False)


def parse_rare(args: Segment, position: int) -> TopCommand:
    return _parse_top(args, position, rare=True)
