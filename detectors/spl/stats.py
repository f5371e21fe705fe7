"""The stats command: aggregate functions and grouping.

Output rows have the by-fields first (sorted by their values, numbers numerically), then one
field per aggregation named as Splunk names it (``count``, ``sum(bytes)``) unless renamed with
``as``. Rows where a by-field is null are left out; without ``by``, an empty input still gives
one row (``count`` and ``dc`` are 0 there, the others null).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

from detectors.spl.nodes import Aggregation, StatsCommand
from detectors.spl.values import Value, format_value, sort_key, to_number

Getter = Callable[[dict, str], object]


class _State:
    def add(self, value: object, time: float | None) -> None:
        raise NotImplementedError

    def result(self) -> Value:
        raise NotImplementedError


class _Count(_State):
    def __init__(self, field: str | None) -> None:
        self.n = 0
        self.every_row = field is None

    def add(self, value: object, time: float | None) -> None:
        if self.every_row or value is not None:
            self.n += 1

    def result(self) -> Value:
        return self.n


class _Distinct(_State):
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def add(self, value: object, time: float | None) -> None:
        if value is not None:
            self.seen.add(format_value(value))

    def result(self) -> Value:
        return len(self.seen)


class _Numbers(_State):
    """Collects the numeric values; ``reduce`` turns them into the result."""

    def __init__(self, reduce: Callable[[list[float]], Value]) -> None:
        self.numbers: list[float] = []
        self.reduce = reduce

    def add(self, value: object, time: float | None) -> None:
        number = to_number(value)
        if number is not None:
            self.numbers.append(number)

    def result(self) -> Value:
        if not self.numbers:
            return None
        try:
            value = self.reduce(self.numbers)
        except (OverflowError, ValueError):
            return None
        return None if isinstance(value, float) and not math.isfinite(value) else value


class _Extreme(_State):
    """min/max: numerically over the numeric values; lexicographically if there are none."""

    def __init__(self, pick: Callable) -> None:
        self.pick = pick
        self.numbers: list[float] = []
        self.strings: list[str] = []

    def add(self, value: object, time: float | None) -> None:
        if value is None:
            return
        number = to_number(value)
        if number is not None:
            self.numbers.append(number)
        else:
            self.strings.append(format_value(value))

    def result(self) -> Value:
        if self.numbers:
            return self.pick(self.numbers)
        return self.pick(self.strings) if self.strings else None


class _Collect(_State):
    """values (distinct, sorted) and list (in order), rendered comma-joined."""

    def __init__(self, distinct: bool) -> None:
        self.distinct = distinct
        self.items: list[str] = []

    def add(self, value: object, time: float | None) -> None:
        if value is not None:
            self.items.append(format_value(value))

    def result(self) -> Value:
        if not self.items:
            return None
        items = sorted(set(self.items)) if self.distinct else self.items
        return ",".join(items)


class _Pick(_State):
    """first/last in input order; earliest/latest by ``_time`` (ties: first seen)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.value: object = None
        self.time: float | None = None
        self.found = False

    def add(self, value: object, time: float | None) -> None:
        if value is None:
            return
        if not self.found:
            self.found, self.value, self.time = True, value, time
            return
        if self.mode == "last":
            self.value = value
        elif self.mode in ("earliest", "latest") and time is not None:
            if self.time is None:
                better = True
            elif self.mode == "earliest":
                better = time < self.time
            else:
                better = time > self.time
            if better:
                self.value, self.time = value, time

    def result(self) -> Value:
        return self.value  # type: ignore[return-value]


def _sum(numbers: list[float]) -> Value:
    return math.fsum(numbers) if any(isinstance(n, float) for n in numbers) else sum(numbers)


def _percentile(p: float) -> Callable[[list[float]], Value]:
    """Linear interpolation between the closest ranks."""

    def compute(numbers: list[float]) -> Value:
        ordered = sorted(numbers)
        rank = (len(ordered) - 1) * p / 100
        low = math.floor(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)

    return compute


def _variance(numbers: list[float]) -> Value:
    if len(numbers) < 2:
        return 0
    mean = math.fsum(numbers) / len(numbers)
    return math.fsum((n - mean) ** 2 for n in numbers) / (len(numbers) - 1)


def _stdev(numbers: list[float]) -> Value:
    variance = _variance(numbers)
    return math.sqrt(variance) if isinstance(variance, int | float) else None


def _new_state(agg: Aggregation) -> _State:
    func = agg.func
    if func == "count":
        return _Count(agg.field)
    if func == "dc":
        return _Distinct()
    if func == "sum":
        return _Numbers(_sum)
    if func == "avg":
        return _Numbers(lambda ns: math.fsum(ns) / len(ns))
    if func in ("min", "max"):
        return _Extreme(min if func == "min" else max)
    if func == "range":
        return _Numbers(lambda ns: max(ns) - min(ns))
    if func == "median":
        return _Numbers(_percentile(50))
    if func == "perc":
        return _Numbers(_percentile(agg.percentile or 0))
    if func == "stdev":
        return _Numbers(_stdev)
    if func == "var":
        return _Numbers(_variance)
    if func in ("values", "list"):
        return _Collect(distinct=func == "values")
    return _Pick(func)  # first, last, earliest, latest


def run_stats(command: StatsCommand, rows: Iterable[dict], get: Getter) -> Iterator[dict]:
    """Aggregate ``rows`` as ``command`` says."""
    aggs = command.aggregations
    by = command.by
    groups: dict[tuple[str, ...], tuple[list[object], list[_State]]] = {}
    for row in rows:
        values: list[object] = []
        if by:
            values = [get(row, f) for f in by]
            if any(v is None for v in values):
                continue
        key = tuple(format_value(v) for v in values)
        group = groups.get(key)
        if group is None:
            group = (values, [_new_state(a) for a in aggs])
            groups[key] = group
        time = to_number(row.get("_time"))
        for agg, state in zip(aggs, group[1], strict=True):
            state.add(get(row, agg.field) if agg.field is not None else True, time)
    if not groups and not by:
        groups[()] = ([], [_new_state(a) for a in aggs])
    ordered = sorted(groups.values(), key=lambda g: [sort_key(v) for v in g[0]])
    for values, states in ordered:
        out: dict = dict(zip(by, values, strict=True))
        for agg, state in zip(aggs, states, strict=True):
            out[agg.name] = state.result()
        yield out


def new_state(agg: Aggregation) -> _State:
    """A fresh accumulator for ``agg`` (``add(value, time)``, then ``result()``)."""
    return _new_state(agg)
