"""What the Splunk fake counts for a benchmark, and splunkd's concurrent-search quota.

:class:`SearchLedger` keeps one :class:`SearchRecord` per search the fake ran (export or job;
the ``| makeresults`` health check is not a data search and is left out): its event-time span
(``earliest_time`` to ``latest_time`` as the client sent them), its index-time bounds, and the
rows it produced, as event rows (a search that returns events) or result rows (a transforming
search's aggregates). :meth:`SearchLedger.totals` sums them, :meth:`SearchLedger.reset` starts
over, and :meth:`SearchLedger.fetched` counts how many times each event was returned (by its
``_cd``). Rows are what the search produced; a client that stops reading at its result cap gets
fewer.

:class:`SearchQuota` is splunkd's refusal when a concurrent-search quota is full: the role's
``srchJobsQuota`` for the user (scope ``"user"``) or the instance's historical search limit
(scope ``"instance"``). splunkd answers ``503 Service Unavailable`` with a ``WARN`` message
(XML for job creation, JSON for an export in ``output_mode=json``); the texts below are the ones
splunkd sends, and splunk-sdk raises them as ``HTTPError: HTTP 503 Service Unavailable -- …``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

QuotaScope = Literal["user", "instance"]
QUOTA_STATUS = 503
QUOTA_LEVEL = "WARN"


@dataclass(frozen=True, slots=True)
class SearchRecord:
    """One search as the fake ran it."""

    kind: Literal["export", "job"]
    query: str
    earliest: datetime
    latest: datetime
    index_earliest: datetime | None
    index_latest: datetime | None
    rows: int
    events: bool  # rows are events; False for a transforming search's result rows
    at: datetime | None = None  # when it ran, by the fake's index clock (None: no clock)

    @property
    def scanned_s(self) -> float:
        """Event-time seconds the search covered (its plain span, data or not)."""
        return max(0.0, (self.latest - self.earliest).total_seconds())


@dataclass(frozen=True, slots=True)
class SearchTotals:
    searches: int = 0
    event_rows: int = 0
    result_rows: int = 0
    scanned_s: float = 0.0
    refused: int = 0  # searches refused because a quota was full

    @property
    def rows(self) -> int:
        return self.event_rows + self.result_rows


@dataclass
class SearchLedger:
    """Every search the fake ran since the last :meth:`reset`; safe across handler threads."""

    _records: list[SearchRecord] = field(default_factory=list)
    _fetched: Counter[str] = field(default_factory=Counter)
    _refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, search: SearchRecord, events: Iterable[str] = ()) -> None:
        """Note ``search`` and the identities of the events it returned."""
        with self._lock:
            self._records.append(search)
            self._fetched.update(events)

    def fetched(self) -> Counter[str]:
        """How many times each event was returned, by identity."""
        with self._lock:
            return Counter(self._fetched)

    def refuse(self) -> None:
        with self._lock:
            self._refused += 1

    def records(self) -> list[SearchRecord]:
        with self._lock:
            return list(self._records)

    def totals(self) -> SearchTotals:
        with self._lock:
            return _sum(self._records, self._refused)

    def reset(self) -> SearchTotals:
        """Start counting again; returns the totals up to now."""
        with self._lock:
            done = _sum(self._records, self._refused)
            self._records = []
            self._fetched = Counter()
            self._refused = 0
            return done


@dataclass
class SearchQuota:
    """At most ``max_jobs`` searches running at once (None: no limit), as splunkd enforces."""

    max_jobs: int | None = None
    scope: QuotaScope = "user"

    def refusal(self, running: int) -> str | None:
        """splunkd's message when one more search would pass the quota, else None."""
        if self.max_jobs is None or running < self.max_jobs:
            return None
        return quota_message(self.scope, running, self.max_jobs)


def quota_message(scope: QuotaScope, running: int, limit: int) -> str:
    """The text of splunkd's refusal (a ``WARN`` message of a 503 answer)."""
    if scope == "user":
        return (
            'reason="Search not executed: The maximum number of concurrent historical searches '
            'for this user based on their role quota has been reached.", '
            'concurrency_category="historical", concurrency_context="user_instance-wide", '
            f"current_concurrency={running}, concurrency_limit={limit}"
        )
    return (
        "Search not executed: The maximum number of concurrent historical searches on this "
        'instance has been reached., concurrency_category="historical", '
        f'concurrency_context="instance-wide", current_concurrency={running}, '
        f"concurrency_limit={limit}"
    )


def search_record(
    kind: Literal["export", "job"],
    params: dict[str, str],
    rows: int,
    transforming: bool,
    at: datetime | None = None,
) -> SearchRecord:
    """The record of a search the client asked for with ``params`` (epoch-second bounds)."""
    return SearchRecord(
        kind=kind,
        query=params.get("search", ""),
        earliest=_at(params.get("earliest_time")) or datetime.fromtimestamp(0, UTC),
        latest=_at(params.get("latest_time")) or datetime.now(UTC),
        index_earliest=_at(params.get("index_earliest")),
        index_latest=_at(params.get("index_latest")),
        rows=rows,
        events=not transforming,
        at=at,
    )


def _at(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None


def _sum(records: list[SearchRecord], refused: int) -> SearchTotals:
    return SearchTotals(
        searches=len(records),
        event_rows=sum(r.rows for r in records if r.events),
        result_rows=sum(r.rows for r in records if not r.events),
        scanned_s=sum(r.scanned_s for r in records),
        refused=refused,
    )


__all__ = [
    "QUOTA_LEVEL",
    "QUOTA_STATUS",
    "QuotaScope",
    "SearchLedger",
    "SearchQuota",
    "SearchRecord",
    "SearchTotals",
    "quota_message",
    "search_record",
]
