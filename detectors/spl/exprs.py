"""Parsers for the two expression languages: search clauses and eval/where expressions.

Search clauses follow Splunk's precedence: NOT binds tightest, then OR, then AND (implicit
between terms), so ``a b OR c`` means ``a AND (b OR c)``. Eval expressions use the usual one:
``* / %``, ``+ - .``, comparisons and LIKE, NOT, AND, XOR, OR.
"""

from __future__ import annotations

import re

from detectors.spl.functions import FUNCTIONS, REGEX_ARGUMENT
from detectors.spl.lexer import (
    COMMA,
    FIELD,
    LPAREN,
    NUMBER,
    OP,
    RPAREN,
    STRING,
    WORD,
    TokenStream,
)
from detectors.spl.nodes import (
    And,
    Binary,
    Call,
    Expr,
    FieldIn,
    FieldMatch,
    FieldRef,
    Literal,
    Not,
    Or,
    SearchNode,
    SplError,
    Term,
    Unary,
)

# --- search clauses -------------------------------------------------------------------------


class SearchParser:
    """``parse()`` returns the clause's tree, or None for an empty clause (match everything)."""

    def __init__(self, stream: TokenStream) -> None:
        self._s = stream

    def parse(self) -> SearchNode | None:
        self._skip_commas()
        if self._s.at_end():
            return None
        node = self._and()
        if not self._s.at_end():
            self._s.fail("expected a search term")
        return node

    def _skip_commas(self) -> None:
        while self._s.accept(COMMA):
            pass

    def _and(self) -> SearchNode:
        items = [self._or()]
        while True:
            self._skip_commas()
            if self._s.at_end() or self._s.at(RPAREN):
                break
            self._s.accept(WORD, "AND")
            items.append(self._or())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _or(self) -> SearchNode:
        items = [self._not()]
        while self._s.accept(WORD, "OR"):
            items.append(self._not())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _not(self) -> SearchNode:
        if self._s.accept(WORD, "NOT"):
            return Not(self._not())
        return self._primary()

    def _primary(self) -> SearchNode:
        s = self._s
        self._skip_commas()
        tok = s.peek()
        if tok.kind == LPAREN:
            s.next()
            if s.at(RPAREN):
                s.fail("expected a search term inside parentheses")
            node = self._and()
            s.expect(RPAREN, "')'")
            return node
        if tok.kind == STRING:
            s.next()
            return Term(tok.value, True, tok.position)
        if tok.kind != WORD or tok.value in ("AND", "OR"):
            s.fail("expected a search term")
        nxt = s.peek(1)
        if nxt.kind == OP:
            s.next()
            s.next()
            value = s.peek()
            if value.kind not in (WORD, STRING):
                s.fail(f"expected a value after '{tok.value}{nxt.value}'")
            s.next()
            return FieldMatch(tok.value, nxt.value, value.value, tok.position)
        if nxt.kind == WORD and nxt.value == "IN" and s.peek(2).kind == LPAREN:
            s.next()
            s.next()
            s.next()
            values: list[str] = []
            while not s.accept(RPAREN):
                if s.accept(COMMA):
                    continue
                if not (s.at(WORD) or s.at(STRING)):
                    s.fail("expected a value or ')' in IN (...)")
                values.append(s.next().value)
            if not values:
                raise SplError("IN (...) needs at least one value", tok.position)
            return FieldIn(tok.value, tuple(values), tok.position)
        s.next()
        return Term(tok.value, False, tok.position)


# --- eval expressions -----------------------------------------------------------------------

_COMPARISONS = ("=", "==", "!=", "<", "<=", ">", ">=")


class ExprParser:
    """Parses one expression; stops before a top-level ``,`` or the end of the command."""

    def __init__(self, stream: TokenStream) -> None:
        self._s = stream

    def parse(self) -> Expr:
        return self._binary_level(0)

    # The boolean operators, lowest precedence first (NOT and the rest bind tighter).
    _LEVELS: tuple[str, ...] = ("OR", "XOR", "AND")

    def _keyword(self, *words: str) -> str | None:
        tok = self._s.peek()
        if tok.kind == WORD and tok.value.upper() in words and self._s.peek(1).kind != LPAREN:
            return tok.value.upper()
        return None

    def _binary_level(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self._not()
        word = self._LEVELS[level]
        left = self._binary_level(level + 1)
        while (op := self._keyword(word)) is not None:
            pos = self._s.next().position
            right = self._binary_level(level + 1)
            left = Binary(op, left, right, pos)
        return left

    def _not(self) -> Expr:
        if self._keyword("NOT"):
            pos = self._s.next().position
            return Unary("NOT", self._not(), pos)
        return self._comparison()

    def _comparison(self) -> Expr:
        left = self._additive()
        tok = self._s.peek()
        if tok.kind == OP and tok.value in _COMPARISONS:
            self._s.next()
            return Binary(tok.value, left, self._additive(), tok.position)
        if self._keyword("LIKE"):
            self._s.next()
            return Binary("LIKE", left, self._additive(), tok.position)
        return left

    def _additive(self) -> Expr:
        left = self._multiplicative()
        while (tok := self._s.peek()).kind == OP and tok.value in ("+", "-", "."):
            self._s.next()
            left = Binary(tok.value, left, self._multiplicative(), tok.position)
        return left

    def _multiplicative(self) -> Expr:
        left = self._unary()
        while (tok := self._s.peek()).kind == OP and tok.value in ("*", "/", "%"):
            self._s.next()
            left = Binary(tok.value, left, self._unary(), tok.position)
        return left

    def _unary(self) -> Expr:
        tok = self._s.peek()
        if tok.kind == OP and tok.value in ("-", "+"):
            self._s.next()
            operand = self._unary()
            return operand if tok.value == "+" else Unary("-", operand, tok.position)
        return self._primary()

    def _primary(self) -> Expr:
        s = self._s
        tok = s.peek()
        if tok.kind == NUMBER:
            s.next()
            text = tok.value
            is_float = any(c in text for c in ".eE")
            return Literal(float(text) if is_float else int(text))
        if tok.kind == STRING:
            s.next()
            return Literal(tok.value)
        if tok.kind == FIELD:
            s.next()
            return FieldRef(tok.value, tok.position)
        if tok.kind == LPAREN:
            s.next()
            inner = self.parse()
            s.expect(RPAREN, "')'")
            return inner
        if tok.kind == WORD:
            upper = tok.value.upper()
            if upper in ("AND", "OR", "XOR", "NOT", "LIKE") and s.peek(1).kind != LPAREN:
                s.fail("expected a value")
            s.next()
            if s.at(LPAREN):
                return self._call(tok.value, tok.position)
            return FieldRef(tok.value, tok.position)
        s.fail("expected a value")

    def _call(self, name: str, position: int) -> Expr:
        s = self._s
        s.expect(LPAREN, "'('")
        key = name.lower()
        function = FUNCTIONS.get(key)
        if function is None:
            raise SplError(
                f"unsupported function '{name}'",
                position,
                "supported: " + ", ".join(sorted(FUNCTIONS)),
            )
        args: list[Expr] = []
        if not s.accept(RPAREN):
            while True:
                args.append(self.parse())
                if s.accept(RPAREN):
                    break
                s.expect(COMMA, "',' or ')'")
        upper = "any number of" if function.max_args is None else str(function.max_args)
        if len(args) < function.min_args or (
            function.max_args is not None and len(args) > function.max_args
        ):
            want = (
                str(function.min_args)
                if function.min_args == function.max_args
                else f"{function.min_args} to {upper}"
            )
            raise SplError(f"{key}() takes {want} arguments, got {len(args)}", position)
        if key == "case" and len(args) % 2:
            raise SplError("case() takes condition, value pairs", position)
        regex_at = REGEX_ARGUMENT.get(key)
        if regex_at is not None and isinstance(args[regex_at], Literal):
            pattern = args[regex_at]
            try:
                re.compile(str(pattern.value))  # type: ignore[union-attr]
            except re.error as exc:
                raise SplError(
                    f"invalid regular expression in {key}(): {exc.msg}", position
                ) from None
        return Call(key, tuple(args), position)


def parse_expression(stream: TokenStream) -> Expr:
    """One eval expression from ``stream``."""
    return ExprParser(stream).parse()


__all__ = ["ExprParser", "SearchParser", "parse_expression"]
