"""Readiness bookkeeping: each dependency's health, and since when it has been failing.

Two kinds of observation feed it, in the order they happen:

* checks, asked when ``/ready`` is asked (the database, chat surfaces, pagers; the search
  backend at most every 15 s, since its check runs a search);
* real calls, reported by the integration as they end (a search, a Bedrock analysis): the
  integration calls its ``on_health`` hook with a failing :class:`~bot.ports.Health` when a
  call fails for the dependency's sake (5xx, 429, a timeout, a reset connection) and with an
  ok one when a call is answered. No call is made only to find out;
* deliveries (:func:`delivery_failures`): a chat surface or pager with outbox messages
  waiting for a retry after a failed attempt is failing, whatever its own check says (a Teams check
  reads only the stored conversations, so this is how a Teams outage shows).

A dependency is failing from the first observation that is not ok until the next one that is;
:class:`Readiness` keeps that moment. ``/ready`` shows it on each failing check
(``failing_since``, ``failing_for_s`` and the reason's text), and ``/metrics`` has
``bot_dependency_failing_seconds{dependency}`` (0 while it is fine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select

from bot.pipeline.notify import MessageKind
from bot.ports import Clock, Health, HealthStatus
from bot.store.repo import OUTBOX

HealthHook = Callable[[Health], None]
"""What an integration calls after each real call with what it found."""

ORDER = [HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.DOWN]
RECENT_FAILURE = timedelta(seconds=10)


def ignore_health(health: Health) -> None:
    """The default ``on_health`` hook: nobody is listening."""


@dataclass(frozen=True, slots=True)
class DependencyState:
    """The last thing seen of one dependency, and since when it has been failing (None: ok)."""

    health: Health
    seen_at: datetime
    failing_since: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.health.status is not HealthStatus.OK

    def failing_for(self, now: datetime) -> float:
        if self.failing_since is None:
            return 0.0
        return max(0.0, (now - self.failing_since).total_seconds())

    def as_json(self, now: datetime) -> dict[str, Any]:
        """``status`` and ``reason``; a failing one adds ``failing_since`` (ISO 8601, UTC)
        and ``failing_for_s``, and says so at the end of its reason."""
        found: dict[str, Any] = {
            "status": self.health.status.value,
            "reason": self.health.reason,
        }
        if self.failing_since is not None:
            seconds = self.failing_for(now)
            found["failing_since"] = self.failing_since.isoformat()
            found["failing_for_s"] = round(seconds, 1)
            since = f"{self.failing_since:%Y-%m-%d %H:%M:%S}Z"
            found["reason"] = f"{self.health.reason} (failing for {_span(seconds)}, since {since})"
        return found


class Readiness:
    """Every dependency's state, by the name ``/ready`` shows (``search``, ``surface:slack``,
    ``rca:bedrock`` …). Observations and scrapes all come from the bot's event loop."""

    def __init__(self, clock: Clock, registry: CollectorRegistry | None = None) -> None:
        self._clock = clock
        self._states: dict[str, DependencyState] = {}
        if registry is not None:
            registry.register(_FailingSeconds(self))

    def observe(self, name: str, health: Health) -> DependencyState:
        """Record ``health`` as the latest news of ``name``; keep the moment it started failing
        until it is ok again."""
        now = self._clock.now()
        before = self._states.get(name)
        since: datetime | None = None
        if health.status is not HealthStatus.OK:
            since = before.failing_since if before and before.failing_since else now
        state = DependencyState(health, now, since)
        self._states[name] = state
        return state

    def hook(self, name: str, checked: bool = False) -> HealthHook:
        """The ``on_health`` hook an integration reports its real calls through. When the
        dependency also has a check (``checked``), a success while all is well is no news: the
        check's own reason (a version, say) stays."""

        def report(health: Health) -> None:
            before = self._states.get(name)
            quiet = checked and before is not None and not before.failing
            if health.status is HealthStatus.OK and quiet:
                return
            self.observe(name, health)

        return report

    def now(self) -> datetime:
        return self._clock.now()

    def state(self, name: str) -> DependencyState | None:
        return self._states.get(name)

    def states(self) -> dict[str, DependencyState]:
        return dict(self._states)

    def report(self, names: list[str]) -> tuple[HealthStatus, dict[str, dict[str, Any]]]:
        """The worst status over ``names`` (those seen) and each one's JSON, in that order."""
        now = self._clock.now()
        seen = [(n, self._states[n]) for n in names if n in self._states]
        worst = max((s.health.status for _, s in seen), key=ORDER.index, default=HealthStatus.OK)
        return worst, {name: state.as_json(now) for name, state in seen}


def delivery_failures(
    engine: Engine, now: datetime, grace: timedelta = RECENT_FAILURE
) -> dict[str, Health]:
    """Per outbox surface (``slack``, ``teams``, ``pagerduty`` …): DOWN when messages wait for
    a retry after a failed delivery, with how many and the latest error. A message whose retry
    has been due for longer than ``grace`` is backlog (waiting for its turn or its rate
    budget), not news of a failure: once the service is back, the old errors stop counting."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.surface, OUTBOX.c.last_error)
            .where(
                OUTBOX.c.status == "pending",
                OUTBOX.c.last_error != "",
                # messages to the service itself (a chart waits for its own drawing too)
                OUTBOX.c.kind.in_([kind.value for kind in MessageKind]),
                OUTBOX.c.next_attempt_at >= now - grace,
            )
            .order_by(OUTBOX.c.next_attempt_at.desc())
            .limit(1000)
        ).all()
    waiting: dict[str, list[str]] = {}
    for surface, error in rows:
        waiting.setdefault(surface, []).append(error)
    return {
        surface: Health(
            HealthStatus.DOWN,
            f"{len(errors)} message(s) waiting after a failed delivery; the latest: {errors[0]}",
        )
        for surface, errors in waiting.items()
    }


def worse(check: Health, other: Health | None) -> Health:
    """The check, unless ``other`` is worse (then ``other``)."""
    if other is None or ORDER.index(other.status) <= ORDER.index(check.status):
        return check
    return other


class _FailingSeconds(Collector):
    """``bot_dependency_failing_seconds{dependency}``, computed when scraped."""

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "bot_dependency_failing_seconds",
            "How long each dependency has been failing (0 while it is fine), as last seen by "
            "/ready's checks or by real calls (searches, RCA)",
            labels=["dependency"],
        )
        now = self._readiness.now()
        for name, state in sorted(self._readiness.states().items()):
            family.add_metric([name], state.failing_for(now))
        yield family


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
