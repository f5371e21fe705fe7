"""Stages of rex, regex, spath, eventstats, streamstats, top and rare."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from detectors.fields.jsonpath import flatten, lookup, parse_json
from detectors.spl.evals import Getter
from detectors.spl.fields import BUILTIN_FIELDS
from detectors.spl.nodes import (
    EventstatsCommand,
    RegexCommand,
    RexCommand,
    SpathCommand,
    StreamstatsCommand,
    TopCommand,
)
from detectors.spl.stats import new_state, run_stats
from detectors.spl.values import format_value, sort_key, to_number

Rows = Iterable[dict]
Stage = Callable[[Rows], Rows]
_PROTECTED = frozenset(BUILTIN_FIELDS)


def _text(value: object) -> str | None:
    return None if value is None else format_value(value)


def rex_stage(command: RexCommand, get: Getter) -> Stage:
    regex = re.compile(command.regex)
    names = list(regex.groupindex)
    limit = command.max_match

    def stage(rows: Rows) -> Iterator[dict]:
        for row in rows:
            text = _text(get(row, command.field))
            if text is not None:
                if limit == 1:
                    m = regex.search(text)
                    if m is not None:
                        for name, value in m.groupdict().items():
                            if value is not None:
                                row[name] = value
                else:
                    found: dict[str, list[str]] = {}
                    for count, m in enumerate(regex.finditer(text), 1):
                        for name in names:
                            value = m.group(name)
                            if value is not None:
                                found.setdefault(name, []).append(value)
                        if count == limit:
                            break
                    for name, values in found.items():
                        row[name] = ",".join(values)
            yield row

    return stage


def regex_stage(command: RegexCommand, get: Getter) -> Stage:
    search = re.compile(command.regex).search
    negate = command.negate

    def keep(row: dict) -> bool:
        text = _text(get(row, command.field))
        if text is None:
            return negate
        return (search(text) is None) if negate else (search(text) is not None)

    return lambda rows: filter(keep, rows)


def spath_stage(command: SpathCommand, get: Getter) -> Stage:
    path, target = command.path, command.output or command.path

    def stage(rows: Rows) -> Iterator[dict]:
        for row in rows:
            text = _text(get(row, command.input))
            document = None if text is None else parse_json(text)
            if document is not None:
                if path is None:
                    for key, value in flatten(document).items():
                        if key not in _PROTECTED:
                            row[key] = value
                else:
                    picked = lookup(document, path)
                    if picked is not None and target is not None:
                        row[target] = picked
            yield row

    return stage


def _group_key(row: dict, by: tuple[str, ...], get: Getter) -> tuple[str, ...] | None:
    key = []
    for name in by:
        value = get(row, name)
        if value is None:
            return None
        key.append(format_value(value))
    return tuple(key)


def eventstats_stage(command: EventstatsCommand, get: Getter) -> Stage:
    stats = command.stats

    def stage(rows: Rows) -> Iterator[dict]:
        items = list(rows)
        results: dict[tuple[str, ...], dict] = {}
        for out in run_stats(stats, items, get):
            key = tuple(format_value(out.get(name)) for name in stats.by)
            results[key] = out
        names = [a.name for a in stats.aggregations]
        for row in items:
            group = _group_key(row, stats.by, get)
            found = results.get(group) if group is not None else None
            if found is not None:
                for name in names:
                    row[name] = found.get(name)
            yield row

    return stage


def streamstats_stage(command: StreamstatsCommand, get: Getter) -> Stage:
    stats = command.stats
    aggs = stats.aggregations

    def values(row: dict) -> list[object]:
        return [get(row, a.field) if a.field is not None else True for a in aggs]

    def stage(rows: Rows) -> Iterator[dict]:
        running: dict[tuple[str, ...], list] = {}
        windows: dict[tuple[str, ...], deque] = {}
        for row in rows:
            key = _group_key(row, stats.by, get)
            if key is None:
                yield row
                continue
            time = to_number(row.get("_time"))
            own = values(row)
            if command.window:
                seen = windows.setdefault(key, deque(maxlen=command.window))
                if command.current:
                    seen.append((own, time))
                states = [new_state(a) for a in aggs]
                for past, at in seen:
                    for state, value in zip(states, past, strict=True):
                        state.add(value, at)
                if not command.current:
                    seen.append((own, time))
            else:
                states = running.setdefault(key, [new_state(a) for a in aggs])
                if command.current:
                    for state, value in zip(states, own, strict=True):
                        state.add(value, time)
            for agg, state in zip(aggs, states, strict=True):
                result = state.result()
                if result is None and agg.func in ("count", "dc"):
                    result = 0
                row[agg.name] = result
            if not command.window and not command.current:
                for state, value in zip(states, own, strict=True):
                    state.add(value, time)
            yield row

    return stage


def top_stage(command: TopCommand, get: Getter) -> Stage:
    def stage(rows: Rows) -> Iterator[dict]:
        groups: dict[tuple[str, ...], tuple[list[object], dict[tuple[str, ...], list]]] = {}
        for row in rows:
            group_key = _group_key(row, command.by, get)
            if group_key is None:
                continue
            values = [get(row, f) for f in command.fields]
            if any(v is None for v in values):
                continue
            by_values = [get(row, f) for f in command.by]
            _, counts = groups.setdefault(group_key, (by_values, {}))
            key = tuple(format_value(v) for v in values)
            entry = counts.get(key)
            if entry is None:
                counts[key] = [values, 1]
            else:
                entry[1] += 1
        ordered = sorted(groups.values(), key=lambda g: [sort_key(v) for v in g[0]])
        for by_values, counts in ordered:
            total = sum(c for _, c in counts.values())
            ranked = sorted(counts.values(), key=lambda e: e[1], reverse=not command.rare)
            if command.limit:
                ranked = ranked[: command.limit]
            for values, count in ranked:
                out: dict = dict(zip(command.by, by_values, strict=True))
                out.update(zip(command.fields, values, strict=True))
                if command.countfield is not None:
                    out[command.countfield] = count
                if command.percentfield is not None:
                    out[command.percentfield] = round(count * 100 / total, 6)
                yield out

    return stage
