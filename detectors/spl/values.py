"""Value semantics shared by search, eval and stats: numbers, strings, nulls and ordering."""

from __future__ import annotations

import math
import re
from functools import lru_cache

Value = str | int | float | bool | None

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def to_number(value: object) -> int | float | None:
    """The number a value stands for (``"503"`` is 503), or None for non-numbers and nulls."""
    if isinstance(value, str):
        if value.isdigit() and value.isascii():
            return int(value)
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        if "." in value or "e" in value or "E" in value:
            number = float(value)
            return number if math.isfinite(number) else None
        return int(value)
    return None


def format_value(value: object) -> str:
    """How a value reads in results: integral floats without ``.0``, booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(value, ".15g")
    return str(value)


def truthy(value: object) -> bool:
    """Whether a where/if condition holds: nulls, false, 0 and "" do not."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return value != ""


def compare(left: object, op: str, right: object) -> bool:
    """``left <op> right``: numeric when both sides are numbers, else by string. Nulls: False."""
    if left is None or right is None:
        return False
    a = to_number(left)
    b = to_number(right)
    if a is None or b is None:
        a = format_value(left)  # type: ignore[assignment]
        b = format_value(right)  # type: ignore[assignment]
    if op in ("=", "=="):
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    raise ValueError(f"unknown comparison {op!r}")


def sort_key(value: object) -> tuple[int, float | str]:
    """Auto ordering: numbers numerically, before strings in lexicographic order."""
    number = to_number(value)
    if number is not None:
        return (0, number)
    return (1, format_value(value))


@lru_cache(maxsize=4096)
def wildcard(pattern: str, ignore_case: bool = True) -> re.Pattern[str]:
    """A whole-string matcher for a pattern where ``*`` matches any run of characters."""
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.compile(body, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


@lru_cache(maxsize=1024)
def like_pattern(pattern: str) -> re.Pattern[str]:
    """SQL LIKE: ``%`` any run, ``_`` one character; case-sensitive, whole string."""
    parts = []
    for ch in pattern:
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)
