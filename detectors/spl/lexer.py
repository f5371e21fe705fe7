"""Tokenizers for the SPL subset: one for search clauses and command arguments, one for eval.

Every token carries its character offset into the whole query so errors can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from detectors.spl.nodes import SplError

WORD = "word"
STRING = "string"  # a double-quoted string, unescaped
FIELD = "field"  # a single-quoted field name (eval expressions)
NUMBER = "number"
OP = "op"
LPAREN = "("
RPAREN = ")"
COMMA = ","
EOF = "end of query"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: str
    position: int

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of query"
        if self.kind == STRING:
            return f'"{self.value}"'
        return f"'{self.value}'"


@dataclass(frozen=True, slots=True)
class Segment:
    """The text of one pipe-separated command and where it starts in the query."""

    text: str
    offset: int


def split_pipes(text: str) -> list[Segment]:
    """Split on ``|`` outside double quotes. Subsearches (``[...]``) are refused."""
    segments: list[Segment] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i, '"')
            continue
        if ch == "[":
            raise SplError("subsearches ([...]) are not supported", i)
        if ch == "|":
            segments.append(Segment(text[start:i], start))
            start = i + 1
        i += 1
    segments.append(Segment(text[start:], start))
    return segments


def _skip_string(text: str, start: int, quote: str) -> int:
    """The index just past the string opening at ``start``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            i += 2
            continue
        if ch == quote:
            return i + 1
        i += 1
    raise SplError("unterminated quoted string", start)


def _read_string(text: str, start: int, quote: str) -> tuple[str, int]:
    end = _skip_string(text, start, quote)
    body = text[start + 1 : end - 1]
    if "\\" in body:  # only \\ and an escaped quote are escapes; "\d+" stays a regex
        body = re.sub(r"\\([\\" + quote + "])", r"\1", body)
    return body, end


_SEARCH_OPS = ("!=", "<=", ">=", "=", "<", ">")
_SEARCH_STOP = set(' \t\r\n()",=<>')
_ARGS_STOP = set(' \t\r\n()",=')


def tokenize_words(segment: Segment, *, comparisons: bool) -> list[Token]:
    """Tokens of a search clause (``comparisons=True``) or of command arguments.

    Words run until whitespace, a parenthesis, a quote, a comma or an operator; in argument
    mode the only operator is ``=`` so ``-count`` and ``foo*`` stay single words.
    """
    text = segment.text
    base = segment.offset
    stop = _SEARCH_STOP if comparisons else _ARGS_STOP
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = base + i
        if ch in "(),":
            tokens.append(Token(ch, ch, pos))
            i += 1
            continue
        if ch == '"':
            try:
                value, end = _read_string(text, i, '"')
            except SplError as exc:
                raise SplError(exc.reason, base + exc.position) from None
            tokens.append(Token(STRING, value, pos))
            i = end
            continue
        if comparisons:
            op = next((o for o in _SEARCH_OPS if text.startswith(o, i)), None)
            if op is not None:
                tokens.append(Token(OP, op, pos))
                i += len(op)
                continue
        elif ch == "=":
            tokens.append(Token(OP, "=", pos))
            i += 1
            continue
        j = i
        while j < n and text[j] not in stop:
            if comparisons and text[j] == "!" and text.startswith("!=", j):
                break
            j += 1
        if j == i:  # a lone '!' or similar: take one character
            j = i + 1
        tokens.append(Token(WORD, text[i:j], pos))
        i = j
    tokens.append(Token(EOF, "", base + n))
    return tokens


_EXPR_OPS = ("==", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", ".")
_NUMBER_RE = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", re.ASCII)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize_expr(segment: Segment) -> list[Token]:
    """Tokens of an eval/where expression."""
    text = segment.text
    base = segment.offset
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = base + i
        if ch in "(),":
            tokens.append(Token(ch, ch, pos))
            i += 1
            continue
        if ch in "\"'":
            try:
                value, end = _read_string(text, i, ch)
            except SplError as exc:
                raise SplError(exc.reason, base + exc.position) from None
            tokens.append(Token(STRING if ch == '"' else FIELD, value, pos))
            i = end
            continue
        if m := _NUMBER_RE.match(text, i):
            tokens.append(Token(NUMBER, m.group(), pos))
            i = m.end()
            continue
        if m := _IDENT_RE.match(text, i):
            tokens.append(Token(WORD, m.group(), pos))
            i = m.end()
            continue
        op = next((o for o in _EXPR_OPS if text.startswith(o, i)), None)
        if op is None:
            raise SplError(f"unexpected character {ch!r} in expression", pos)
        tokens.append(Token(OP, op, pos))
        i += len(op)
    tokens.append(Token(EOF, "", base + n))
    return tokens


class TokenStream:
    """A cursor over tokens with the helpers the parsers share."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._i + ahead, len(self._tokens) - 1)]

    def next(self) -> Token:
        tok = self._tokens[self._i]
        if tok.kind != EOF:
            self._i += 1
        return tok

    def at_end(self) -> bool:
        return self.peek().kind == EOF

    def at(self, kind: str, value: str | None = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (value is None or tok.value == value)

    def at_keyword(self, *words: str) -> bool:
        """A bare word equal (case-insensitively) to one of ``words``."""
        tok = self.peek()
        return tok.kind == WORD and tok.value.lower() in words

    def accept(self, kind: str, value: str | None = None) -> Token | None:
        if self.at(kind, value):
            return self.next()
        return None

    def expect(self, kind: str, what: str, value: str | None = None) -> Token:
        if self.at(kind, value):
            return self.next()
        self.fail(f"expected {what}")

    def fail(self, message: str) -> NoReturn:
        tok = self.peek()
        raise SplError(f"{message}, found {tok.describe()}", tok.position)
