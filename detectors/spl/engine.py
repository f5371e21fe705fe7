"""The SPL subset the local backend runs: ``parse`` a query once, ``run`` it over rows.

See docs/spl-subset.md for what is supported. Example::

    pipeline = parse("index=web status>=500 | stats count by host")
    rows = run(pipeline, store.scan(earliest, latest), earliest, latest)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice

from detectors.fields.extractor import DEFAULT as DEFAULT_EXTRACTOR
from detectors.fields.extractor import FieldExtractor
from detectors.spl.commands import Plan, compile_plan
from detectors.spl.fields import EventRow, match_fields, materialize
from detectors.spl.functions import NOW, compile_regex
from detectors.spl.nodes import (
    And,
    BinCommand,
    Command,
    EvalCommand,
    EventstatsCommand,
    FieldMatch,
    FieldsCommand,
    Or,
    RenameCommand,
    RexCommand,
    SearchCommand,
    SearchNode,
    SpathCommand,
    SplError,
    StatsCommand,
    StreamstatsCommand,
    TableCommand,
    Term,
    TopCommand,
)
from detectors.spl.parser import SUPPORTED_COMMANDS, parse_commands
from detectors.spl.search import term_needle
from detectors.spl.time import resolve_time
from detectors.spl.values import format_value, to_number

_PUSHABLE = ("index", "sourcetype", "host", "source")
_INTERNAL = ("_time", "_raw")


@dataclass(frozen=True, slots=True)
class Prefilter:
    """What a backend may apply before evaluating: equalities and inline time modifiers.

    The equalities are exact (no wildcards), case-insensitive, and come from the top-level AND
    of the first search clause, as do ``contains``: groups of lowercase ASCII substrings of
    which ``_raw`` must hold at least one per group (from bare terms and ORs of terms). The
    pipeline still checks everything, so applying a prefilter is optional.
    """

    index: str | None = None
    sourcetype: str | None = None
    host: str | None = None
    source: str | None = None
    earliest: str | None = None
    latest: str | None = None
    contains: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Pipeline:
    """A parsed query: its commands, the prefilter a backend can push down, and its plan."""

    text: str
    commands: tuple[Command, ...]
    prefilter: Prefilter
    plan: Plan = field(repr=False)

    @property
    def is_transforming(self) -> bool:
        """True when results are aggregated rows (stats, top) rather than events."""
        return any(isinstance(c, StatsCommand | TopCommand) for c in self.commands)

    def output_fields(self) -> set[str] | None:
        """The fields results can have, when the pipeline fixes them; None when unknowable."""
        known: set[str] | None = None
        for command in self.commands:
            known = _output_after(command, known)
        return known

    def window(
        self, earliest: datetime, latest: datetime, now: datetime | None = None
    ) -> tuple[datetime, datetime]:
        """``[earliest, latest)`` narrowed by inline modifiers (relative to ``now``/latest)."""
        anchor = now or latest
        start, end = earliest, latest
        for name, spec in (
            ("earliest", self.prefilter.earliest),
            ("latest", self.prefilter.latest),
        ):
            if spec is None:
                continue
            try:
                moment = resolve_time(spec, anchor)
            except ValueError as exc:
                raise SplError(f"invalid time '{spec}' for {name}: {exc}", 0) from None
            start, end = (
                (max(start, moment), end) if name == "earliest" else (start, min(end, moment))
            )
        return start, max(start, end)


def _output_after(command: Command, known: set[str] | None) -> set[str] | None:
    if isinstance(command, StatsCommand):
        return set(command.by) | {a.name for a in command.aggregations}
    if isinstance(command, TopCommand):
        extra = {f for f in (command.countfield, command.percentfield) if f is not None}
        return set(command.by) | set(command.fields) | extra
    if isinstance(command, TableCommand):
        if known is not None:
            return set(match_fields(command.fields, sorted(known)))
        return None if any("*" in f for f in command.fields) else set(command.fields)
    if isinstance(command, FieldsCommand):
        if command.remove:
            return None if known is None else known - set(match_fields(command.fields, known))
        if known is not None:
            kept = set(match_fields(command.fields, sorted(known)))
            return kept | {k for k in known if k.startswith("_")}
        if any("*" in f for f in command.fields):
            return None
        return set(command.fields) | set(_INTERNAL)
    if known is None:
        return None
    if isinstance(command, EvalCommand):
        return known | {name for name, _ in command.assignments}
    if isinstance(command, RexCommand):
        return known | set(compile_regex(command.regex).groupindex)
    if isinstance(command, SpathCommand):
        target = command.output or command.path
        return None if target is None else known | {target}
    if isinstance(command, EventstatsCommand | StreamstatsCommand):
        return known | {a.name for a in command.stats.aggregations}
    if isinstance(command, BinCommand) and command.alias:
        return known | {command.alias}
    if isinstance(command, RenameCommand):
        renamed = set(known)
        for source, target in command.pairs:
            if "*" in source:
                return None
            if source in renamed:
                renamed.discard(source)
                renamed.add(target)
        return renamed
    return known


def _prefilter(commands: tuple[Command, ...]) -> Prefilter:
    first = commands[0]
    assert isinstance(first, SearchCommand)
    top: list[SearchNode] = []
    if isinstance(first.expr, And):
        top = list(first.expr.items)
    elif first.expr is not None:
        top = [first.expr]
    found: dict[str, str] = {}
    contains: list[tuple[str, ...]] = []
    for node in top:
        group = _needles(node)
        if group:
            contains.append(group)
        if (
            isinstance(node, FieldMatch)
            and node.op == "="
            and node.field in _PUSHABLE
            and "*" not in node.value
            and node.value.isascii()
            and to_number(node.value) is None
        ):
            found.setdefault(node.field, node.value)
    return Prefilter(
        **found, earliest=first.earliest, latest=first.latest, contains=tuple(contains)
    )


def _needles(node: SearchNode) -> tuple[str, ...]:
    """Substrings one of which ``_raw`` must contain for ``node`` to match; () if unknown."""
    terms = node.items if isinstance(node, Or) else (node,)
    needles = []
    for term in terms:
        if not isinstance(term, Term):
            return ()
        needle = term_needle(term.text.strip())
        if needle is None:
            return ()
        needles.append(needle)
    return tuple(dict.fromkeys(needles))


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Pipeline:
    commands = parse_commands(text)
    return Pipeline(text, commands, _prefilter(commands), compile_plan(commands))


def parse(text: str) -> Pipeline:
    """Parse and compile ``text`` (cached by text). Raises SplError with the position."""
    return _parse_cached(text)


def run(
    pipeline: Pipeline,
    rows: Iterable[dict],
    earliest: datetime,
    latest: datetime,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    extractor: FieldExtractor | None = DEFAULT_EXTRACTOR,
) -> list[dict]:
    """Run ``pipeline`` over ``rows`` and return at most ``limit`` results.

    Rows outside the window (narrowed by inline ``earliest``/``latest``) are skipped; rows are
    processed in the order given (Splunk gives events newest first, so ``head`` keeps the
    newest). Input rows are not modified. Result values are str, int, float or bool;
    ``_time`` is float epoch seconds; nulls are left out. ``extractor`` supplies the fields
    of each sourcetype (see docs/field-extraction.md); None extracts only ``key=value`` pairs.
    """
    start, end = pipeline.window(earliest, latest, now)
    low, high = start.timestamp(), end.timestamp()

    def windowed() -> Iterable[dict]:
        for row in rows:
            t = row.get("_time")
            if type(t) is float:
                number: int | float | None = t
            else:
                if isinstance(t, datetime):
                    t = (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
                number = to_number(t)
            if number is not None and not low <= number < high:
                continue
            copy = EventRow(row)
            copy.pending = extractor
            if number is not None:
                copy["_time"] = number
            yield copy

    token = NOW.set((now or latest).timestamp())
    try:
        stream: Iterable[dict] = windowed()
        for stage in pipeline.plan.stages:
            stream = stage(stream)
        if limit is not None:
            stream = islice(stream, max(limit, 0))
        results = []
        for row in stream:
            if pipeline.plan.events_at_end:
                materialize(row)
            results.append({k: v for k, v in row.items() if v is not None})
        return results
    finally:
        NOW.reset(token)


__all__ = [
    "SUPPORTED_COMMANDS",
    "Pipeline",
    "Prefilter",
    "SplError",
    "format_value",
    "parse",
    "run",
]
