"""The Splunk search backend: detection queries run on splunkd through splunk-sdk.

Every splunklib call runs in a worker thread; at most ``SPLUNK_MAX_CONCURRENT`` searches run
at once (the rest wait their turn), and each search, retries included, must finish within
``SPLUNK_SEARCH_TIMEOUT``. A search that runs out of time is stopped on Splunk: its export
stream is closed, or its normal job cancelled.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from xml.etree.ElementTree import ParseError

from splunklib.binding import HTTPError

from bot.domain.hits import Hit, SearchQuery
from bot.errors import BotError, PermanentError, TransientError
from bot.health import HealthHook, ignore_health
from bot.ports import Clock, Health, HealthStatus, SystemClock
from integrations.splunk.errors import (
    SplunkSearchError,
    SplunkTimeout,
    auth_error,
    kind_of,
    translate_http,
    translate_os,
    unreadable,
)
from integrations.splunk.links import search_link, search_text, time_range
from integrations.splunk.results import to_hit
from integrations.splunk.searches import run_export, run_job
from integrations.splunk.session import Session
from integrations.splunk.settings import SplunkSettings
from integrations.splunk.transport import Abort, Aborted, Transport, tls_context

log = logging.getLogger(__name__)

SearchMode = Literal["export", "job"]
T = TypeVar("T")

MAX_ATTEMPTS = 3
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0
STOP_GRACE_S = 3.0
SOCKET_SLACK_S = 5.0  # a socket gives up this long after the search's own deadline
CHECK_TIMEOUT_S = 4.5
CHECK_QUERY = "| makeresults count=1"


@dataclass(slots=True)
class SearchCounters:
    """Live figures for metrics: searches started, running now and at most so far, retries,
    logins repeated after a 401, searches stopped at the cap, seconds spent in blocking calls,
    and failures by kind (``auth``, ``search``, ``timeout``, ``unavailable``, …)."""

    started: int = 0
    active: int = 0
    max_active: int = 0
    retries: int = 0
    relogins: int = 0
    capped: int = 0
    blocking_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


class SplunkSearchBackend:
    """Implements :class:`bot.ports.SearchBackend` on Splunk."""

    #: honours SearchQuery.index_earliest / index_latest (Splunk's index-time search bounds)
    index_time_bounds = True

    def __init__(self, settings: SplunkSettings, clock: Clock | None = None) -> None:
        self._settings = settings.require_usable()
        self._clock = clock or SystemClock()
        self._where = settings.base_url
        self._secrets = settings.secret_values()
        context = tls_context(settings.verify_tls, settings.ca_file)
        self._transport = Transport(context, timeout=settings.search_timeout + SOCKET_SLACK_S)
        self._session = Session(settings, self._transport)
        self._lock = threading.Lock()
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._rng = random.Random()
        self._auth_failure: tuple[datetime, str] | None = None
        self.counters = SearchCounters()
        # told the outcome of every search as it ends (/ready's "search" check, bot.health)
        self.on_health: HealthHook = ignore_health
        if settings.scheme == "https" and not settings.verify_tls:
            log.warning("TLS verification for Splunk at %s is off (SPLUNK_VERIFY_TLS)", self._where)

    # the port --------------------------------------------------------------------------------

    async def search(self, query: SearchQuery, *, mode: SearchMode | None = None) -> list[Hit]:
        """Run ``query`` over its window; at most ``min(query.max_results, SPLUNK_MAX_RESULTS)``
        hits. ``mode`` (else ``query.mode``, else ``"export"``) picks export or a normal job."""
        chosen = mode or getattr(query, "mode", None) or "export"
        if chosen not in ("export", "job"):
            raise PermanentError(f"unknown Splunk search mode {chosen!r}; use 'export' or 'job'")
        cap = min(query.max_results, self._settings.max_results)
        if cap <= 0 or query.earliest >= query.latest:
            return []
        text = search_text(query.text)
        runner = run_job if chosen == "job" else run_export
        params = time_range(query)

        def blocking(abort: Abort) -> tuple[list[Hit], bool]:
            result = self._call(abort, lambda s: runner(s, text, params, cap, abort))
            return [to_hit(row, query.latest) for row in result.rows], result.capped

        hits, capped = await self._run(blocking)
        self._auth_failure = None
        self.on_health(Health(HealthStatus.OK, f"the last search at {self._where} was answered"))
        if capped:
            self.counters.capped += 1
            log.warning("Splunk search stopped at the cap of %d results", cap)
        return hits

    async def check(self) -> Health:
        """Connect, read the server's version and, when a slot is free, run a trivial search."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                version = await self._in_thread(
                    lambda abort: self._call(abort, lambda s: str(s.info.get("version", "?")))
                )
                slots = self._semaphore()
                if slots.locked():
                    searched = f"searches busy ({self.counters.active} running)"
                else:
                    async with self._slot():
                        await self._in_thread(
                            lambda abort: self._call(
                                abort, lambda s: run_export(s, CHECK_QUERY, {}, 1, abort)
                            )
                        )
                    searched = "search ok"
        except TimeoutError:
            return Health(
                HealthStatus.DOWN, f"Splunk at {self._where} did not answer in {CHECK_TIMEOUT_S}s"
            )
        except BotError as exc:
            return Health(HealthStatus.DOWN, self._scrub(str(exc)))
        if self._auth_failure is not None:
            at, reason = self._auth_failure
            return Health(
                HealthStatus.DEGRADED,
                f"Splunk {version} answers, but the last search failed at "
                f"{at:%Y-%m-%d %H:%M:%S}Z: {reason}",
            )
        return Health(HealthStatus.OK, f"Splunk {version}, {searched}")

    def search_link(self, query: SearchQuery) -> str:
        """Splunk Web's address of ``query`` over its window (for evidence provenance)."""
        return search_link(self._settings.search_web_url, self._settings.app, query)

    # running a search ------------------------------------------------------------------------

    async def _run(self, blocking: Callable[[Abort], T]) -> T:
        timeout = self._settings.search_timeout
        async with self._slot():
            try:
                async with asyncio.timeout(timeout) as budget:
                    return await self._attempts(blocking, budget)
            except TimeoutError:
                error: BotError = SplunkTimeout(
                    f"Splunk search timed out after {timeout:g}s (SPLUNK_SEARCH_TIMEOUT); "
                    "the search was stopped"
                )
            except BotError as exc:
                error = exc
        self._failed(error)
        raise error

    async def _attempts(self, blocking: Callable[[Abort], T], budget: asyncio.Timeout) -> T:
        loop = asyncio.get_running_loop()
        attempt = 1
        while True:
            try:
                return await self._in_thread(blocking)
            except TransientError as exc:
                deadline = budget.when() or loop.time()
                pause = self._backoff(attempt, exc.retry_after)
                if attempt >= MAX_ATTEMPTS or loop.time() + pause >= deadline:
                    raise
                self.counters.retries += 1
                log.info(
                    "Splunk search failed (%s); attempt %d of %d in %.2fs",
                    self._scrub(str(exc)),
                    attempt + 1,
                    MAX_ATTEMPTS,
                    pause,
                )
                attempt += 1
                await asyncio.sleep(pause)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_BACKOFF_S)
        ceiling = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.random() * ceiling / 2

    async def _in_thread(self, blocking: Callable[[Abort], T]) -> T:
        """Run ``blocking`` in a worker thread; if this task is cancelled (a timeout), stop the
        search on Splunk and wait (briefly) for the thread before passing the cancel on."""
        abort = Abort()
        work = asyncio.ensure_future(asyncio.to_thread(self._bound, abort, blocking))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            abort()
            await asyncio.wait({work}, timeout=STOP_GRACE_S)
            work.add_done_callback(_consume)
            if abort.job is not None:
                cancel = asyncio.ensure_future(asyncio.to_thread(self._cancel_job, abort.job))
                await asyncio.wait({cancel}, timeout=STOP_GRACE_S)
                cancel.add_done_callback(_consume)
            raise

    def _bound(self, abort: Abort, blocking: Callable[[Abort], T]) -> T:
        started = time.perf_counter()
        try:
            with self._transport.bound(abort):
                return blocking(abort)
        finally:
            with self._lock:
                self.counters.blocking_seconds += time.perf_counter() - started

    def _call(self, abort: Abort, action: Callable[[Any], T]) -> T:
        """``action(service)``, connecting again once after a 401; errors translated."""
        stale: int | None = None
        try:
            for attempt in (1, 2):
                generation: int | None = None
                try:
                    service, generation = self._session.get(stale)
                    result = action(service)
                except HTTPError as exc:
                    if exc.status != 401:
                        raise
                    if attempt == 2:
                        failure = auth_error(self._settings.auth_variables)
                        self._auth_failure = (self._clock.now().astimezone(UTC), str(failure))
                        raise failure from None
                    stale = generation
                    with self._lock:
                        self.counters.relogins += 1
                    log.info("Splunk answered 401; connecting again")
                    continue
                return result
        except Aborted:
            raise TransientError("search aborted") from None
        except HTTPError as exc:
            raise translate_http(exc, self._where) from None
        except (OSError, http.client.HTTPException) as exc:
            raise translate_os(exc, self._where) from None
        except (ParseError, KeyError) as exc:  # splunk-sdk reading an answer it did not expect
            raise unreadable(exc, self._where) from None
        raise AssertionError("unreachable")

    def _cancel_job(self, job: Any) -> None:
        try:
            job.cancel()
        except (HTTPError, OSError, http.client.HTTPException) as exc:
            log.warning("could not cancel Splunk job %s: %s", job.sid, type(exc).__name__)
        else:
            log.info("cancelled Splunk job %s (out of time)", job.sid)

    # bookkeeping -----------------------------------------------------------------------------

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self._settings.max_concurrent))
        return self._slots[1]

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with self._semaphore():
            c = self.counters
            c.started += 1
            c.active += 1
            c.max_active = max(c.max_active, c.active)
            try:
                yield
            finally:
                c.active -= 1

    def _failed(self, error: BotError) -> None:
        kind = kind_of(error)
        self.counters.errors[kind] = self.counters.errors.get(kind, 0) + 1
        text = str(error)
        scrubbed = self._scrub(text)
        if scrubbed != text:
            error.args = (scrubbed,)
        if not isinstance(error, SplunkSearchError):  # a query Splunk refuses is the rule's fault
            self.on_health(Health(HealthStatus.DOWN, f"the last search failed: {scrubbed}"))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
