"""The embedded search backend: SPL-subset queries over the local SQLite event store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from contextlib import closing

from bot.domain.hits import Hit, SearchQuery
from bot.errors import PermanentError, TransientError
from bot.ports import Health, HealthStatus
from detectors.fields import DEFAULT as DEFAULT_EXTRACTOR
from detectors.fields import FieldExtractor
from detectors.spl.engine import parse, run
from detectors.spl.hits import to_hit
from integrations.local.events import EventStore

log = logging.getLogger(__name__)


class LocalSearchBackend:
    """Implements bot.ports.SearchBackend over an :class:`EventStore`.

    Fields are extracted per sourcetype by ``extractor`` (the shipped extractions unless
    given one with a user's own; see docs/field-extraction.md). Searches run in a worker thread.
    Events come newest first (as Splunk returns them), capped
    at ``query.max_results``; aggregated rows (stats) come in the order the pipeline makes.
    """

    #: honours SearchQuery.index_earliest / index_latest (each event keeps its index time)
    index_time_bounds = True

    def __init__(self, store: EventStore, extractor: FieldExtractor | None = None) -> None:
        self._store = store
        self._extractor = extractor or DEFAULT_EXTRACTOR

    async def search(self, query: SearchQuery) -> list[Hit]:
        return await asyncio.to_thread(self.search_sync, query)

    def search_sync(self, query: SearchQuery) -> list[Hit]:
        """The search, run in the calling thread. Raises SplError for a query it cannot run."""
        pipeline = parse(query.text)
        start, end = pipeline.window(query.earliest, query.latest, query.latest)
        if start >= end or query.max_results <= 0:
            return []
        pf = pipeline.prefilter
        try:
            scan = self._store.scan(
                start,
                end,
                index=pf.index,
                sourcetype=pf.sourcetype,
                host=pf.host,
                contains=pf.contains,
                newest_first=True,
                index_earliest=query.index_earliest,
                index_latest=query.index_latest,
            )
            with closing(scan):  # type: ignore[type-var]
                rows = run(
                    pipeline,
                    scan,
                    query.earliest,
                    query.latest,
                    now=query.latest,
                    limit=query.max_results,
                    extractor=self._extractor,
                )
        except sqlite3.OperationalError as exc:
            raise TransientError(f"event store {self._store.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise PermanentError(f"event store {self._store.path}: {exc}") from exc
        transforming = pipeline.is_transforming
        return [to_hit(row, transforming, query.latest) for row in rows]

    async def check(self) -> Health:
        try:
            count = await asyncio.to_thread(self._store.count)
        except (sqlite3.Error, OSError) as exc:
            return Health(HealthStatus.DOWN, f"event store {self._store.path}: {exc}")
        return Health(HealthStatus.OK, f"{count} events")
