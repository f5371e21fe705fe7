"""Compiles search-clause trees into row predicates.

Bare terms match ``_raw`` case-insensitively on token boundaries (``error`` matches
``status=error`` and ``error_code`` but not ``errors``; ``error*`` matches ``errors``). Rows
without ``_raw`` (after stats or table) match a term if any field value does. Field values
compare case-insensitively, with ``*`` wildcards; ``field!=v`` needs the field to exist, while
``NOT field=v`` also keeps rows without it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from detectors.spl.nodes import And, FieldIn, FieldMatch, Not, Or, SearchNode, Term
from detectors.spl.values import format_value, to_number, wildcard

Getter = Callable[[dict, str], object]
Predicate = Callable[[dict], bool]


def compile_search(node: SearchNode | None, get: Getter) -> Predicate:
    """A predicate for ``node`` (None matches every row)."""
    if node is None:
        return lambda row: True
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, FieldMatch):
        return _field_match(node.field, node.op, node.value, get)
    if isinstance(node, FieldIn):
        tests = [_field_match(node.field, "=", v, get) for v in node.values]
        return lambda row: any(t(row) for t in tests)
    if isinstance(node, Not):
        inner = compile_search(node.item, get)
        return lambda row: not inner(row)
    parts = [compile_search(item, get) for item in node.items]
    if isinstance(node, And):
        if len(parts) == 2:
            a, b = parts
            return lambda row: a(row) and b(row)
        return lambda row: all(p(row) for p in parts)
    assert isinstance(node, Or)
    return lambda row: any(p(row) for p in parts)


_ALNUM = "A-Za-z0-9"


@lru_cache(maxsize=4096)
def term_regex(text: str, quoted: bool) -> re.Pattern[str]:
    """The regex a term or phrase compiles to (see the module docstring)."""
    star = ".*?" if quoted else r"\S*?"
    pieces = []
    for part in text.split("*"):
        words = re.split(r"\s+", part)
        pieces.append(r"\s+".join(re.escape(w) for w in words))
    body = star.join(pieces)
    left = rf"(?<![{_ALNUM}])" if text[:1].isalnum() else ""
    right = rf"(?![{_ALNUM}])" if text[-1:].isalnum() else ""
    return re.compile(left + body + right, re.IGNORECASE | re.DOTALL)


def term_needle(text: str) -> str | None:
    """The longest literal piece a term's match must contain (lowercase ASCII), if any."""
    pieces = [p for p in re.split(r"[*\s]+", text) if p]
    if not pieces:
        return None
    longest = max(pieces, key=len).lower()
    return longest if longest.isascii() else None


def _term(node: Term) -> Predicate:
    text = node.text.strip()
    if not text.strip("* \t\r\n"):
        return lambda row: True
    search = term_regex(text, node.quoted).search
    needle = term_needle(text)

    def match(row: dict) -> bool:
        raw = row.get("_raw")
        if isinstance(raw, str):
            if needle is not None and needle not in raw.lower():
                return False
            return search(raw) is not None
        return any(v is not None and search(format_value(v)) for v in row.values())

    return match


def _field_match(field: str, op: str, value: str, get: Getter) -> Predicate:
    if op in ("=", "!="):
        equal = _equality(value)
        if op == "=":
            return lambda row: equal(get(row, field))

        def not_equal(row: dict) -> bool:
            actual = get(row, field)
            return actual is not None and not equal(actual)

        return not_equal
    return _ordering(field, _ORDERINGS[op], value, get)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _ordering(
    field: str, before: Callable[[object, object], bool], value: str, get: Getter
) -> Predicate:
    """``field <op> value``: numeric when both are numbers, else by string."""
    number = to_number(value)

    def check(row: dict) -> bool:
        actual = get(row, field)
        if actual is None:
            return False
        if number is not None:
            other = to_number(actual)
            if other is not None:
                return before(other, number)
        return before(format_value(actual), value)

    return check


def _equality(value: str) -> Callable[[object], bool]:
    """Whether a field value equals ``value`` (numbers numerically, else case-insensitively)."""
    if value == "*":
        return lambda actual: actual is not None
    number = to_number(value)
    if "*" in value:
        matcher = wildcard(value).fullmatch
        return lambda actual: actual is not None and matcher(format_value(actual)) is not None
    folded = value.casefold()

    def equal(actual: object) -> bool:
        if actual is None:
            return False
        if number is not None:
            other = to_number(actual)
            if other is not None:
                return other == number
        return format_value(actual).casefold() == folded

    return equal
