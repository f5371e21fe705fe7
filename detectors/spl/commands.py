"""Compiles parsed commands into a plan: a chain of stages, each a function of a row stream.

Rows start as events whose ``key=value`` fields are extracted from ``_raw`` on first use.
Commands that reshape rows (stats, table, fields, rename) end that phase: from then on a
field is only what the row holds. Streaming commands stay lazy, so ``head`` and a result cap
stop the scan early.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from detectors.spl.evals import Getter, compile_expr
from detectors.spl.fields import lazy_get, match_fields, materialize, plain_get
from detectors.spl.more import (
    eventstats_stage,
    regex_stage,
    rex_stage,
    spath_stage,
    streamstats_stage,
    top_stage,
)
from detectors.spl.nodes import (
    BinCommand,
    Command,
    DedupCommand,
    EvalCommand,
    EventstatsCommand,
    FieldsCommand,
    HeadCommand,
    RegexCommand,
    RenameCommand,
    RexCommand,
    SearchCommand,
    SortCommand,
    SortKey,
    SpathCommand,
    StatsCommand,
    StreamstatsCommand,
    TableCommand,
    TopCommand,
    WhereCommand,
)
from detectors.spl.search import compile_search
from detectors.spl.stats import run_stats
from detectors.spl.values import format_value, sort_key, to_number, truthy

Rows = Iterable[dict]
Stage = Callable[[Rows], Rows]


@dataclass(frozen=True, slots=True)
class Plan:
    stages: tuple[Stage, ...]
    events_at_end: bool  # the results are still events: extract all their fields at the end


def compile_plan(commands: Iterable[Command]) -> Plan:
    stages: list[Stage] = []
    events = True
    for command in commands:
        get: Getter = lazy_get if events else plain_get
        if isinstance(command, SearchCommand):
            stages.append(_filter(compile_search(command.expr, get)))
        elif isinstance(command, WhereCommand):
            condition = compile_expr(command.expr, get)
            stages.append(_filter(lambda row, c=condition: truthy(c(row))))  # type: ignore[misc]
        elif isinstance(command, EvalCommand):
            stages.append(_eval([(n, compile_expr(e, get)) for n, e in command.assignments]))
        elif isinstance(command, StatsCommand):
            stages.append(lambda rows, c=command, g=get: run_stats(c, rows, g))  # type: ignore[misc]
            events = False
        elif isinstance(command, SortCommand):
            stages.append(_sort(command.keys, command.limit, get))
        elif isinstance(command, HeadCommand):
            stages.append(lambda rows, n=command.limit: islice(rows, n))  # type: ignore[misc]
        elif isinstance(command, TableCommand):
            stages.append(_table(command.fields, get, events))
            events = False
        elif isinstance(command, FieldsCommand):
            stages.append(_fields(command, get, events))
            events = False
        elif isinstance(command, RenameCommand):
            stages.append(_rename(command.pairs, events))
            events = False
        elif isinstance(command, BinCommand):
            stages.append(_bin(command, get))
        elif isinstance(command, DedupCommand):
            stages.append(_dedup(command, get))
        elif isinstance(command, RexCommand):
            stages.append(rex_stage(command, get))
        elif isinstance(command, RegexCommand):
            stages.append(regex_stage(command, get))
        elif isinstance(command, SpathCommand):
            stages.append(spath_stage(command, get))
        elif isinstance(command, EventstatsCommand):
            stages.append(eventstats_stage(command, get))
        elif isinstance(command, StreamstatsCommand):
            stages.append(streamstats_stage(command, get))
        elif isinstance(command, TopCommand):
            stages.append(top_stage(command, get))
            events = False
        else:  # pragma: no cover - the parser makes only the commands above
            raise TypeError(f"no stage for {command!r}")
    return Plan(tuple(stages), events)


def _filter(predicate: Callable[[dict], bool]) -> Stage:
    return lambda rows: filter(predicate, rows)


def _eval(assignments: list[tuple[str, Callable[[dict], object]]]) -> Stage:
    def stage(rows: Rows) -> Iterator[dict]:
        for row in rows:
            for name, compute in assignments:
                row[name] = compute(row)
            yield row

    return stage


def _sort_value(value: object, key: SortKey) -> tuple:
    """Nulls last in either direction; numbers before strings unless the mode says otherwise."""
    if value is None:
        return (0 if key.descending else 1, (0, 0))
    present = 1 if key.descending else 0
    if key.mode == "str":
        return (present, (1, format_value(value)))
    if key.mode == "num":
        number = to_number(value)
        return (present, (0, number) if number is not None else (1, format_value(value)))
    return (present, sort_key(value))


def _sort(keys: tuple[SortKey, ...], limit: int | None, get: Getter) -> Stage:
    def stage(rows: Rows) -> list[dict]:
        items = list(rows)
        for key in reversed(keys):
            items.sort(
                key=lambda row, k=key: _sort_value(get(row, k.field), k),  # type: ignore[misc]
                reverse=key.descending,
            )
        return items[:limit] if limit else items

    return stage


def _table(fields: tuple[str, ...], get: Getter, events: bool) -> Stage:
    if not any("*" in f for f in fields):

        def plain(rows: Rows) -> Iterator[dict]:
            for row in rows:
                yield {f: v for f in fields if (v := get(row, f)) is not None}

        return plain

    def patterned(rows: Rows) -> Iterator[dict]:
        for row in rows:
            if events:
                materialize(row)
            yield {k: row[k] for k in match_fields(fields, row)}

    return patterned


def _fields(command: FieldsCommand, get: Getter, events: bool) -> Stage:
    names = command.fields
    wild = any("*" in f for f in names)

    def stage(rows: Rows) -> Iterator[dict]:
        for row in rows:
            if events and (wild or command.remove):
                materialize(row)
            if command.remove:
                for key in match_fields(names, row):
                    del row[key]
                yield row
                continue
            if wild:
                keep = match_fields(names, row)
            else:
                keep = [f for f in names if get(row, f) is not None]
            kept = {k: row[k] for k in keep}
            for key, value in row.items():
                if key.startswith("_") and key not in kept:
                    kept[key] = value
            yield kept

    return stage


def _rename(pairs: tuple[tuple[str, str], ...], events: bool) -> Stage:
    plans: list[tuple[str, str, re.Pattern[str] | None]] = []
    for source, target in pairs:
        rx = None
        if "*" in source:
            head, tail = source.split("*")
            rx = re.compile(re.escape(head) + "(.*)" + re.escape(tail), re.DOTALL)
        plans.append((source, target, rx))

    def stage(rows: Rows) -> Iterator[dict]:
        for row in rows:
            if events:
                materialize(row)
            for source, target, rx in plans:
                if rx is None:
                    if source in row:
                        row[target] = row.pop(source)
                    continue
                for key in list(row):
                    m = rx.fullmatch(key)
                    if m:
                        row[target.replace("*", m.group(1))] = row.pop(key)
            yield row

    return stage


def _bin(command: BinCommand, get: Getter) -> Stage:
    span = command.span
    target = command.alias or command.field

    def stage(rows: Rows) -> Iterator[dict]:
        for row in rows:
            number = to_number(get(row, command.field))
            if number is not None:
                low = math.floor(number / span) * span
                if command.as_time:
                    row[target] = low
                else:
                    row[target] = f"{format_value(float(low))}-{format_value(float(low + span))}"
            yield row

    return stage


def _dedup(command: DedupCommand, get: Getter) -> Stage:
    def stage(rows: Rows) -> Iterator[dict]:
        seen: dict[tuple[str, ...], int] = {}
        for row in rows:
            values = [get(row, f) for f in command.fields]
            if any(v is None for v in values):
                if command.keepempty:
                    yield row
                continue
            key = tuple(format_value(v) for v in values)
            count = seen.get(key, 0)
            if count < command.keep:
                seen[key] = count + 1
                yield row

    return stage
