"""What ``/ready`` reports: each dependency's status and reason (a failing one says since when,
through :class:`bot.health.Readiness`), and who leads the schedules. The checks run at once,
each bounded, so one hanging dependency delays the answer by its own timeout only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.errors import BotError
from bot.health import delivery_failures, worse
from bot.ports import Health, HealthStatus
from bot.store import replicas

if TYPE_CHECKING:
    from bot.wiring import Runtime

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 5.0
#: a Splunk check runs a search: at most this often (searches report their outcomes between)
SEARCH_CHECK_EVERY = timedelta(seconds=15)


async def readiness_report(runtime: Runtime) -> dict[str, Any]:
    health = runtime.health
    ready = HealthStatus.OK if runtime.db.ready else HealthStatus.DOWN
    health.observe("database", Health(ready, runtime.db.reason))
    surfaces, pagers = list(runtime.surfaces.items()), list(runtime.pagers.items())
    search, failed, found = await asyncio.gather(
        _search_health(runtime),
        _failed_deliveries(runtime),
        asyncio.gather(
            *(checked(surface.check()) for _, surface in surfaces),
            *(checked(pager.check()) for _, pager in pagers),
        ),
    )
    if search is not None:
        health.observe("search", search)
    for (name, _), result in zip(surfaces, found[: len(surfaces)], strict=True):
        health.observe(f"surface:{name}", worse(result, failed.get(name)))
    for (name, _), result in zip(pagers, found[len(surfaces) :], strict=True):
        health.observe(f"pager:{name}", worse(result, failed.get(name)))
    names = [
        "database",
        "search",
        *(f"surface:{n}" for n, _ in surfaces),
        *(f"pager:{n}" for n, _ in pagers),
        "rca:bedrock",
    ]
    worst, checks = health.report(names)
    return {
        "status": worst.value,
        "leader": runtime.leader,
        "lease": await asyncio.to_thread(lease_report, runtime),
        "checks": checks,
    }


async def _search_health(runtime: Runtime) -> Health | None:
    """The search backend's check, at most every :data:`SEARCH_CHECK_EVERY`; None between."""
    now = runtime.clock.now()
    last = runtime._search_checked
    if last is not None and now - last < SEARCH_CHECK_EVERY:
        return None
    runtime._search_checked = now
    return await checked(runtime.backend.check())


async def _failed_deliveries(runtime: Runtime) -> dict[str, Health]:
    if not runtime.db.ready:
        return {}
    try:
        return await asyncio.to_thread(delivery_failures, runtime.engine, runtime.clock.now())
    except Exception as exc:  # readiness must answer even when the database is away
        log.debug("outbox not readable: %s", exc)
        return {}


def lease_report(runtime: Runtime) -> dict[str, Any]:
    """Who runs the schedules: this replica or which other, at which generation, and the
    replicas seen alive."""
    seen = runtime.lease.last_seen
    live: list[str] = []
    if runtime.db.ready:
        try:
            within = runtime.settings.lease_heartbeat * 3
            live = [r.holder for r in replicas.live(runtime.engine, runtime.clock.now(), within)]
        except Exception as exc:  # readiness must answer even when the database is away
            log.debug("replicas not readable: %s", exc)
    return {
        "held": runtime.lease.held,
        "me": runtime.holder,
        "holder": seen.holder if seen else "",
        "generation": seen.generation if seen else 0,
        "expires_at": seen.expires_at.isoformat() if seen else None,
        "replicas": live,
    }


async def checked(awaitable: Awaitable[Health]) -> Health:
    """A dependency's own check, bounded; an error or a timeout is a DOWN with its reason."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await awaitable
    except TimeoutError:
        return Health(HealthStatus.DOWN, f"health check timed out after {CHECK_TIMEOUT_S:g}s")
    except BotError as exc:
        return Health(HealthStatus.DOWN, str(exc))


__all__ = ["checked", "lease_report", "readiness_report"]
