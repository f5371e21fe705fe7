"""Compiles eval/where expression trees into Python closures over a row."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable

from detectors.spl.functions import FUNCTIONS
from detectors.spl.nodes import Binary, Call, Expr, FieldRef, Literal, Unary
from detectors.spl.values import (
    Value,
    compare,
    format_value,
    like_pattern,
    to_number,
    truthy,
)

log = logging.getLogger(__name__)

Getter = Callable[[dict, str], object]
Compiled = Callable[[dict], Value]

_FAILURES = (ValueError, TypeError, ArithmeticError, re.error)


def compile_expr(node: Expr, get: Getter) -> Compiled:
    """A function computing ``node`` for a row; ``get`` reads a field of the row."""
    if isinstance(node, Literal):
        value = node.value
        return lambda row: value
    if isinstance(node, FieldRef):
        name = node.name
        return lambda row: get(row, name)  # type: ignore[return-value]
    if isinstance(node, Unary):
        operand = compile_expr(node.operand, get)
        if node.op == "NOT":
            return lambda row: not truthy(operand(row))
        return lambda row: _negate(operand(row))
    if isinstance(node, Binary):
        return _binary(node, get)
    return _call(node, get)


def _negate(value: Value) -> Value:
    number = to_number(value)
    return None if number is None else -number


def _add(a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    x, y = to_number(a), to_number(b)
    if x is not None and y is not None:
        return x + y
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    return None


def _arith(fn: Callable[[float, float], Value]) -> Callable[[Value, Value], Value]:
    def apply(a: Value, b: Value) -> Value:
        x, y = to_number(a), to_number(b)
        if x is None or y is None:
            return None
        try:
            result = fn(x, y)
        except (ArithmeticError, ValueError):
            return None
        return None if isinstance(result, float) and not math.isfinite(result) else result

    return apply


def _modulo(x: float, y: float) -> Value:
    """The remainder with the sign of ``x``, as in C and Splunk (``-7 % 3`` is -1)."""
    if isinstance(x, int) and isinstance(y, int):
        remainder = abs(x) % abs(y)  # ZeroDivisionError for y == 0: null
        return -remainder if x < 0 else remainder
    if y == 0:
        return None
    return math.fmod(x, y)


def _concat(a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    return format_value(a) + format_value(b)


def _like(a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    return like_pattern(format_value(b)).fullmatch(format_value(a)) is not None


_ARITHMETIC: dict[str, Callable[[Value, Value], Value]] = {
    "+": _add,
    "-": _arith(lambda x, y: x - y),
    "*": _arith(lambda x, y: x * y),
    "/": _arith(lambda x, y: x / y),
    "%": _arith(_modulo),
    ".": _concat,
    "LIKE": _like,
}


def _binary(node: Binary, get: Getter) -> Compiled:
    left = compile_expr(node.left, get)
    right = compile_expr(node.right, get)
    op = node.op
    if op == "AND":
        return lambda row: truthy(left(row)) and truthy(right(row))
    if op == "OR":
        return lambda row: truthy(left(row)) or truthy(right(row))
    if op == "XOR":
        return lambda row: truthy(left(row)) != truthy(right(row))
    arithmetic = _ARITHMETIC.get(op)
    if arithmetic is not None:
        return lambda row: arithmetic(left(row), right(row))
    return lambda row: compare(left(row), op, right(row))


def _call(node: Call, get: Getter) -> Compiled:
    args = [compile_expr(a, get) for a in node.args]
    if node.name == "if":
        cond, then, other = args
        return lambda row: then(row) if truthy(cond(row)) else other(row)
    if node.name == "case":
        pairs = list(zip(args[::2], args[1::2], strict=True))

        def case(row: dict) -> Value:
            for cond, value in pairs:
                if truthy(cond(row)):
                    return value(row)
            return None

        return case
    impl = FUNCTIONS[node.name].impl
    assert impl is not None
    name = node.name

    def call(row: dict) -> Value:
        try:
            return impl(*(a(row) for a in args))
        except _FAILURES as exc:
            log.debug("%s() gave null: %s", name, exc)
            return None

    return call
