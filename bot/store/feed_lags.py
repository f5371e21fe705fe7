"""The indexing lags the shared searches measured, kept across restarts and lease takeovers.

A feed's scan-back and the hold of event-time rules follow the largest lag measured over the
last hour (``detectors.feeds``). Kept only in memory, a process that starts (or a replica that
takes the scheduler lease over) would know none: it would scan the whole ``max_index_lag`` back
for ten minutes while it learns again, and held rules would wait for a first measurement. So the
lease holder writes the lag memory to ``settings_kv`` (one row, at most every
``SAVE_EVERY``; one entry per ``BUCKET_S`` of index time, the largest lag in it), and a runner
reads it back before its first fed run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from bot.store.repo import insert_ignore
from bot.store.settings_kv import SETTINGS
from detectors.feeds import FeedSet

log = logging.getLogger(__name__)

KEY = "feeds.index_lags"
BUCKET_S = 30.0
SAVE_EVERY = timedelta(seconds=30)

LagHistory = list[tuple[float, float]]
"""(index time, the largest lag a fetch found then), oldest first, in epoch seconds."""


def compact(history: Iterable[tuple[float, float]]) -> LagHistory:
    """One entry per ``BUCKET_S`` of index time: the bucket's latest time, its largest lag."""
    buckets: dict[float, tuple[float, float]] = {}
    for at, lag in history:
        bucket = math.floor(at / BUCKET_S)
        seen = buckets.get(bucket)
        buckets[bucket] = (max(at, seen[0]), max(lag, seen[1])) if seen else (at, lag)
    return [buckets[b] for b in sorted(buckets)]


def load(engine: Engine) -> LagHistory:
    """What the last holder saved; empty when nothing was, or the row is unreadable."""
    with engine.connect() as conn:
        row = conn.execute(select(SETTINGS.c.value_json).where(SETTINGS.c.key == KEY)).first()
    if row is None:
        return []
    try:
        return [(float(at), float(lag)) for at, lag in json.loads(row.value_json)]
    except (TypeError, ValueError) as exc:
        log.warning("the saved indexing lags are unreadable (%s): measuring them again", exc)
        return []


def save(engine: Engine, history: Iterable[tuple[float, float]], now: datetime) -> None:
    """Replace the saved lags with ``history`` (through the caller's engine: a fenced one
    refuses the write once this process no longer holds the scheduler lease)."""
    value = json.dumps([[round(at, 3), round(lag, 3)] for at, lag in compact(history)])
    with engine.begin() as conn:
        insert_ignore(conn, SETTINGS, [{"key": KEY, "value_json": value, "updated_at": now}], "key")
        conn.execute(
            update(SETTINGS)
            .where(SETTINGS.c.key == KEY)
            .values(value_json=value, updated_at=now, updated_by="scheduler")
        )


class LagKeeper:
    """The runner's side: resume the saved lags before the first fed run, save them at most
    every ``SAVE_EVERY`` after fetches. Neither ever fails a run: a lag memory that cannot be
    read is measured again, one that cannot be written (the database away, the lease gone) is
    written by a later run or by the next holder."""

    def __init__(self, engine: Engine, feeds: FeedSet) -> None:
        self._engine = engine
        self._feeds = feeds
        self._resumed = False
        self._saved_at: datetime | None = None

    async def resume(self) -> None:
        if self._resumed:
            return
        try:
            history = await asyncio.to_thread(load, self._engine)
        except Exception as exc:  # the database is away: this run fails on its own anyway
            log.warning("saved indexing lags not readable: %s", exc)
            return
        self._resumed = True
        self._feeds.resume_lags(history)

    async def keep(self, now: datetime) -> None:
        if self._saved_at is not None and now - self._saved_at < SAVE_EVERY:
            return
        history = self._feeds.lag_history()
        if not history:
            return
        self._saved_at = now
        try:
            await asyncio.to_thread(save, self._engine, history, now)
        except Exception as exc:  # a fenced write (the lease moved on) or the database away
            log.info("indexing lags not saved: %s", exc)


__all__ = ["KEY", "LagHistory", "LagKeeper", "compact", "load", "save"]
