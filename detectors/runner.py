"""Run one rule over one window: search, evaluate with the rule's type, redact the evidence."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.domain.hits import Alert, Evidence, Hit, SearchQuery
from bot.gcpause import gc_paused
from bot.ports import SearchBackend
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.types import rule_type
from detectors.window import Window


@dataclass(frozen=True, slots=True)
class RunResult:
    alerts: list[Alert]
    hits: int
    duration_s: float
    #: (sourcetype, seconds from timestamp to index time) of each event new to this run
    index_lags: tuple[tuple[str, float], ...] = ()


async def run_rule(
    rule: Rule,
    backend: SearchBackend,
    window: Window,
    redact: Callable[[str], str],
    memory: RuleMemory | None = None,
) -> RunResult:
    """Search ``window`` for ``rule`` and return its alerts; backend errors propagate."""
    started = time.perf_counter()
    evaluator = rule_type(rule.type)
    query = SearchQuery(
        text=rule.query,
        earliest=window.start,
        latest=window.end,
        max_results=rule.max_results,
        mode=rule.search_mode,
        # an index-time run counts what was indexed before its end; the rest is the next run's
        index_latest=window.seen_until or (window.end if window.index_since is not None else None),
    )
    hits = await backend.search(query)
    link_of = getattr(backend, "search_link", None)
    link = link_of(query) if callable(link_of) else ""
    with gc_paused():
        alerts = [
            replace(
                alert,
                evidence=tuple(Evidence(e.id, e.time, redact(e.text)) for e in alert.evidence),
                search_link=link,
            )
            for alert in evaluator.evaluate(
                rule, hits, window, memory if memory is not None else RuleMemory()
            )
        ]
    return RunResult(
        alerts=alerts,
        hits=len(hits),
        duration_s=time.perf_counter() - started,
        index_lags=index_lags(hits, window),
    )


def index_lags(hits: list[Hit], window: Window) -> tuple[tuple[str, float], ...]:
    """How late each event new to ``window`` reached the index, by sourcetype (each event is
    measured once per rule: in the run that first sees it)."""
    if window.index_since is None:
        return ()
    return tuple(
        (hit.fields.get("sourcetype", ""), (hit.indexed - hit.time).total_seconds())
        for hit in hits
        if hit.indexed is not None and window.is_new(hit)
    )


__all__ = ["RunResult", "Window", "index_lags", "run_rule"]
