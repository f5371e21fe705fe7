"""The embedded search backend: SPL-subset queries over the local SQLite event store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from datetime import UTC, datetime

from bot.domain.hits import Hit, SearchQuery
from bot.errors import PermanentError, TransientError
from bot.ports import Health, HealthStatus
from detectors.fields import DEFAULT as DEFAULT_EXTRACTOR
from detectors.fields import FieldExtractor
from detectors.spl.engine import parse, run
from detectors.spl.values import format_value, to_number
from integrations.local.events import EventStore

log = logging.getLogger(__name__)


def format_time(epoch: float) -> str:
    """``_time`` as Splunk's REST API shows it: ``2024-05-01T12:00:00.000+00:00``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def render_row(fields: dict[str, str]) -> str:
    """A result row as ``k=v k=v`` (sorted keys; values with spaces or quotes are quoted)."""
    parts = []
    for key in sorted(fields):
        value = fields[key]
        if value == "" or any(c.isspace() or c in "\"'=" for c in value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}={value}")
    return " ".join(parts)


def indexed_time(fields: Mapping[str, str], transforming: bool) -> datetime | None:
    """An event row's ``_indextime`` (epoch seconds) as a time; None for aggregated rows."""
    stamp = fields.get("_indextime")
    if transforming or not stamp:
        return None
    try:
        return datetime.fromtimestamp(float(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return None


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
        return [self._hit(row, transforming, query.latest) for row in rows]

    @staticmethod
    def _hit(row: dict, transforming: bool, window_end: datetime) -> Hit:
        fields = {k: format_value(v) for k, v in row.items()}
        epoch = to_number(row.get("_time"))
        time = window_end
        if epoch is not None:
            time = datetime.fromtimestamp(epoch, UTC)
            fields["_time"] = format_time(epoch)
        raw = row.get("_raw")
        if transforming or not isinstance(raw, str):
            raw = render_row(fields)
        return Hit(time=time, fields=fields, raw=raw, indexed=indexed_time(fields, transforming))

    async def check(self) -> Health:
        try:
            count = await asyncio.to_thread(self._store.count)
        except (sqlite3.Error, OSError) as exc:
            return Health(HealthStatus.DOWN, f"event store {self._store.path}: {exc}")
        return Health(HealthStatus.OK, f"{count} events")
