"""The ``anomaly`` rule type: a bucketed value per series against a robust baseline.

The hits of each group (a *series*) are cut into ``bucket``-long time buckets aligned to the
epoch (as ``bin _time span=...`` does); each bucket's value is the number of rows, or the
``aggregate`` of ``field``. Every complete bucket is scored once against the series' baseline
and then added to it (see :mod:`detectors.types.baselines`):

* ``mad``: a ring of the last ``history`` bucket values; fires when the modified z-score of a
  bucket reaches ``threshold`` (3.5 by default);
* ``ewma``: an exponentially weighted mean and variance (``alpha``); fires when the z-score
  reaches ``threshold`` (3 by default);
* ``isolation_forest``: a ring of the last ``history`` vectors of ``metrics`` (each the
  bucket's ``aggregate``), scored by an ``IsolationForest`` (scikit-learn, the ``ml`` extra)
  trained on the ring; fires when the anomaly score reaches ``threshold`` (0.7 by default).

Nothing fires until a series has ``min_history`` buckets (30; 200 for ``isolation_forest``,
whose scores only set wild vectors apart from ordinary edge ones with enough history).
Counting, a known series' empty buckets count as zero (traffic that stops is an anomaly); with
``field`` or ``metrics``, empty buckets are skipped. Each series remembers the last bucket it
scored, so overlapping windows and restarts never score a bucket twice; an event arriving after
its bucket was scored is not counted (a fed rule's windows wait for the indexing lag its feed
measured, ``detectors.revisit``; a rule searching alone needs a ``query_delay``). A series
unseen for ``forget_after`` is forgotten.

Memory: ``series:<group>`` (``{"key": [...], "last": bucket start, "seen": epoch, ...}`` plus
the baseline: ``ring`` for mad and isolation_forest, ``n``/``mean``/``var`` for ewma), at most
``max_series`` series (the least recently seen are evicted).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bot.domain.durations import format_duration
from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import (
    FieldRef,
    PositiveDuration,
    Rule,
    rule_error,
)
from detectors.types.baselines import (
    EwmaBaseline,
    ForestBaseline,
    MadBaseline,
    sklearn_available,
)
from detectors.types.common import (
    Direction,
    FieldName,
    Key,
    entries,
    evict,
    fmt,
    from_epoch,
    group_hits,
    iso,
    make_alert,
    memory_key,
    number,
    to_epoch,
    unique_names,
)
from detectors.window import Window

log = logging.getLogger(__name__)


class Method(StrEnum):
    MAD = "mad"
    EWMA = "ewma"
    ISOLATION_FOREST = "isolation_forest"


class Aggregate(StrEnum):
    AVG = "avg"
    SUM = "sum"
    MIN = "min"
    MAX = "max"

    def of(self, values: Sequence[float]) -> float:
        if self is Aggregate.SUM:
            return math.fsum(values)
        if self is Aggregate.MIN:
            return min(values)
        if self is Aggregate.MAX:
            return max(values)
        return math.fsum(values) / len(values)


DEFAULT_THRESHOLD = {Method.MAD: 3.5, Method.EWMA: 3.0, Method.ISOLATION_FOREST: 0.7}
#: A forest trained on few buckets cannot tell a wild vector from an ordinary edge one.
DEFAULT_MIN_HISTORY = {Method.MAD: 30, Method.EWMA: 30, Method.ISOLATION_FOREST: 200}


class AnomalySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method = Method.MAD
    bucket: PositiveDuration = timedelta(minutes=1)
    field: FieldName | None = None
    metrics: tuple[FieldName, ...] = ()
    aggregate: Aggregate = Aggregate.AVG
    threshold: float | None = Field(default=None, gt=0)
    direction: Direction = Direction.BOTH
    min_change: float = Field(default=0, ge=0)
    min_history: int | None = Field(default=None, ge=3, le=100_000)
    history: int = Field(default=240, ge=3, le=10_000)
    alpha: float = Field(default=0.1, gt=0, lt=1)
    forget_after: PositiveDuration = timedelta(hours=24)
    max_series: int = Field(default=1_000, ge=1, le=100_000)

    @field_validator("metrics")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(unique_names(value))

    @model_validator(mode="after")
    def _consistent(self) -> AnomalySettings:
        forest = self.method is Method.ISOLATION_FOREST
        if forest and not self.metrics:
            raise rule_error("method 'isolation_forest' needs 'metrics' (the fields to learn)")
        if forest and self.field is not None:
            raise rule_error("method 'isolation_forest' reads 'metrics', not 'field'")
        if not forest and self.metrics:
            raise rule_error(
                f"'metrics' is for method 'isolation_forest'; {self.method} uses "
                "'field' (or counts rows without it)"
            )
        if forest and self.threshold is not None and not 0.5 < self.threshold < 1:
            raise rule_error(
                "the isolation_forest threshold is an anomaly score: between 0.5 and 1"
            )
        if forest and self.direction is not Direction.BOTH:
            raise rule_error("'direction' does not apply to method 'isolation_forest'")
        if self.method is not Method.EWMA and self.history < self.needed_history:
            raise rule_error(
                f"history ({self.history}) is shorter than min_history "
                f"({self.needed_history}): nothing would ever fire"
            )
        if forest and not sklearn_available():
            raise rule_error(
                "method 'isolation_forest' needs scikit-learn: install the 'ml' "
                "extra (pip install 'incident-chatops-bot[ml]')"
            )
        return self

    @property
    def needed_history(self) -> int:
        """Buckets a series needs before it can fire."""
        return self.min_history or DEFAULT_MIN_HISTORY[self.method]

    @property
    def score_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLD[self.method]


class AnomalyRule(Rule):
    type: Literal["anomaly"] = "anomaly"
    anomaly: AnomalySettings

    @field_validator("anomaly")
    @classmethod
    def _buckets_fit(cls, value: AnomalySettings, info: ValidationInfo) -> AnomalySettings:
        window, interval = info.data.get("window"), info.data.get("interval")
        if window is None:
            return value
        need = value.bucket + (interval or timedelta(0))
        if window < need:
            raise rule_error(
                f"the rule's window ({format_duration(window)}) must cover a bucket plus the "
                f"interval ({format_duration(need)}), or some buckets are never seen whole"
            )
        return value

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        if self.anomaly.field is not None:
            refs.append((("anomaly", "field"), self.anomaly.field))
        refs.extend((("anomaly", "metrics", i), m) for i, m in enumerate(self.anomaly.metrics))
        return refs


Baseline = MadBaseline | EwmaBaseline | ForestBaseline


def evaluate(
    rule: AnomalyRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per series with an anomalous bucket among those completed since its last run."""
    memory = memory if memory is not None else RuleMemory()
    spec = rule.anomaly
    size = spec.bucket.total_seconds()
    first = math.ceil(to_epoch(window.start) / size) * size
    end = to_epoch(window.end)
    groups = group_hits(hits, rule.group_by)
    remembered: dict[Key, tuple[str, dict[str, Any]]] = {
        tuple(value["key"]): (name, value) for name, value in entries(memory, "series")
    }
    alerts = []
    for key in sorted(set(groups) | set(remembered)):
        name, state = remembered.get(key, (memory_key("series", key), None))
        members = groups.get(key, [])
        buckets: dict[float, list[Hit]] = {}
        for hit in members:
            start = math.floor(to_epoch(hit.time) / size) * size
            if start >= first and start + size <= end:
                buckets.setdefault(start, []).append(hit)
        seen = max((to_epoch(hit.time) for hit in members), default=None)
        if state is not None:
            seen = max(seen or 0.0, state["seen"])
            if end - seen > spec.forget_after.total_seconds():
                memory.delete(name)
                continue
        if seen is None:
            continue
        last = state["last"] if state is not None else None
        starts = _due(buckets, last, first, end, size, counting=_counts(spec))
        baseline = _baseline(spec, state)
        found = _score(spec, baseline, buckets, starts)
        after = {
            "key": list(key),
            "last": starts[-1] if starts else last,
            "seen": seen,
            **baseline.dump(),
        }
        if after != state:
            memory.set(name, after)
        if found:
            alerts.append(_alert(rule, key, found, buckets, window))
    evicted = evict(
        memory,
        "series",
        spec.max_series,
        lambda value: value["seen"],
        keep={memory_key("series", key) for key in groups},
    )
    if evicted:
        log.warning(
            "rule %s: %d series forgotten (max_series %d)", rule.id, evicted, spec.max_series
        )
    return alerts


def _counts(spec: AnomalySettings) -> bool:
    return spec.field is None and not spec.metrics


def _due(
    buckets: dict[float, list[Hit]],
    last: float | None,
    first: float,
    end: float,
    size: float,
    counting: bool,
) -> list[float]:
    """The complete bucket starts after ``last`` to score, oldest first. Counting, the empty
    buckets of a series count too (from its first bucket with data)."""
    if not counting:
        after = first if last is None else max(first, last + size)
        return sorted(start for start in buckets if start >= after)
    if last is None:
        if not buckets:
            return []
        after = min(buckets)
    else:
        after = max(first, last + size)
    count = max(0, math.floor((end - after) / size + 1e-9))
    return [after + i * size for i in range(count)]


def _baseline(spec: AnomalySettings, state: dict[str, Any] | None) -> Baseline:
    if spec.method is Method.EWMA:
        return EwmaBaseline(state, spec.alpha)
    if spec.method is Method.ISOLATION_FOREST:
        return ForestBaseline(state, spec.history, len(spec.metrics))
    return MadBaseline(state, spec.history)


def _measure(spec: AnomalySettings, members: Sequence[Hit]) -> list[float] | None:
    """The bucket's value (a one-item list) or metric vector; None when a value is missing."""
    if _counts(spec):
        return [float(len(members))]
    names: tuple[str, ...] = spec.metrics if spec.metrics else (spec.field or "",)
    vector = []
    for name in names:
        values = [v for hit in members if (v := number(hit.fields.get(name))) is not None]
        if not values:
            return None
        vector.append(spec.aggregate.of(values))
    return vector


Found = tuple[float, list[float], list[float], float]  # (start, observed, baseline, score)


def _score(
    spec: AnomalySettings, baseline: Baseline, buckets: dict[float, list[Hit]], starts: list[float]
) -> list[Found]:
    """Score each due bucket, then add it to the baseline; returns the anomalous ones."""
    found: list[Found] = []
    forest_ready = len(baseline) >= spec.needed_history  # the forest is trained once per run
    for start in starts:
        observed = _measure(spec, buckets.get(start, []))
        if observed is None:
            continue
        if isinstance(baseline, ForestBaseline):
            if forest_ready:
                center, score = baseline.score(observed)
                if score >= spec.score_threshold:
                    found.append((start, observed, center, score))
            baseline.add(observed)
            continue
        value = observed[0]
        if len(baseline) >= spec.needed_history:
            middle, score = baseline.score(value)
            if (
                abs(score) >= spec.score_threshold
                and spec.direction.allows(value, middle)
                and abs(value - middle) >= spec.min_change
            ):
                found.append((start, observed, [middle], score))
        baseline.add(value)
    return found


def _alert(
    rule: AnomalyRule,
    key: Key,
    found: list[Found],
    buckets: dict[float, list[Hit]],
    window: Window,
) -> Alert:
    spec = rule.anomaly
    start, observed, center, score = found[-1]
    members = [hit for s, *_ in found for hit in buckets.get(s, [])]
    if spec.method is Method.ISOLATION_FOREST:
        names = spec.metrics
        shown_observed = ", ".join(f"{n}={fmt(v)}" for n, v in zip(names, observed, strict=True))
        shown_baseline = ", ".join(f"{n}={fmt(v)}" for n, v in zip(names, center, strict=True))
        value = score
    else:
        shown_observed, shown_baseline, value = fmt(observed[0]), fmt(center[0]), observed[0]
    return make_alert(
        rule,
        key,
        members,
        value,
        window,
        labels={
            "method": spec.method.value,
            "observed": shown_observed,
            "baseline": shown_baseline,
            "score": fmt(round(score, 2)),
            "bucket": iso(from_epoch(start)),
            "bucket_size": format_duration(spec.bucket),
            "anomalous_buckets": fmt(len(found)),
        },
    )
