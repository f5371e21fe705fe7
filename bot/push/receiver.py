"""Push receiver: one request's alerts -> the pipeline, in one transaction.

Stages: route (first matching route, its group_by), remember (the ``push_alerts`` record: new,
refreshed or resolved), ingest (the firing ones, through :func:`bot.pipeline.ingest.ingest`),
then clear (groups whose every alert has ended resolve through the one writer, a ``CLEAR``
command, as rule recovery does). Expiry of alerts nobody refreshed runs as a chore.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.domain.hits import Alert, group_key
from bot.errors import BotError
from bot.gcpause import gc_paused
from bot.pipeline.ingest import IngestPolicy, IngestResult, ingest
from bot.pipeline.mute import Silence
from bot.ports import Clock
from bot.push import store
from bot.push.config import PushSettings
from bot.push.mapping import (
    EVIDENCE_LINES,
    CompiledRoute,
    Labels,
    PushedAlert,
    alert_fingerprint,
    label_set,
    route_for,
    to_alert,
)
from bot.store.maintenance import active_silences, muter_for

log = logging.getLogger(__name__)
#: resolved alerts stay listed this long for a late duplicate push, then are forgotten
KEEP_ENDED = timedelta(hours=1)
ATTEMPTS = 3


@dataclass(slots=True)
class PushOutcome:
    firing: int = 0
    resolved: int = 0
    created: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)


class PushReceiver:
    """Receives validated pushed alerts and Splunk alert actions for the whole process."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: PushSettings,
        policy: IngestPolicy,
        clear: Callable[[int], Awaitable[object]],
        on_ingested: Callable[[IngestResult], None] = lambda result: None,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.routes = tuple(CompiledRoute.of(r) for r in settings.all_routes())
        self.policy = policy
        self._clear = clear
        self._on_ingested = on_ingested
        self._redact = redact
        self._lock = asyncio.Lock()  # one writer per process: no two pushes race a new group

    async def receive(self, alerts: Sequence[PushedAlert], sender: str) -> PushOutcome:
        """Apply one push; answers once its transaction committed (and its groups cleared)."""
        if not alerts:
            return PushOutcome()
        async with self._lock:
            outcome, results, ended = await asyncio.to_thread(
                self._retrying, lambda: self._apply(alerts, sender)
            )
        for result in results:
            self._on_ingested(result)
        outcome.cleared = await self._clear_all(ended)
        return outcome

    async def receive_alerts(self, alerts: Sequence[Alert], realert: timedelta) -> IngestResult:
        """Alerts already in the pipeline's terms (a Splunk alert action), one transaction."""
        policy = replace(self.policy, realert=realert)

        def apply() -> IngestResult:
            now = self.clock.now()
            with self.engine.begin() as conn:
                return ingest(
                    conn, alerts, now, policy, muter_for(conn, now, active_silences(conn, now))
                )

        async with self._lock:
            result = await asyncio.to_thread(self._retrying, apply)
        self._on_ingested(result)
        return result

    async def expire(self) -> list[int]:
        """Resolve the groups whose every alert has ended (nobody refreshed them)."""

        def ended() -> list[int]:
            now = self.clock.now()
            with self.engine.begin() as conn:
                found = store.ended_incidents(conn, now)
                store.forget_ended(conn, now - KEEP_ENDED)
                return found

        return await self._clear_all(await asyncio.to_thread(ended))

    def active(self) -> list[store.StoredAlert]:
        with self.engine.connect() as conn:
            return store.active(conn, self.clock.now())

    def silences(self) -> list[Silence]:
        with self.engine.connect() as conn:
            return active_silences(conn, self.clock.now())

    # stages ----------------------------------------------------------------------------------

    def _retrying(self, work: Callable[[], Any]) -> Any:
        """Another replica may open the same new group at the same moment: the unique key
        refuses one of them, whose retry joins the incident the other opened."""
        for attempt in range(ATTEMPTS):
            try:
                return work()
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise
                log.info("push: a concurrent writer opened the same group; retrying")
        raise AssertionError("unreachable")

    def _apply(
        self, alerts: Sequence[PushedAlert], sender: str
    ) -> tuple[PushOutcome, list[IngestResult], list[int]]:
        now = self.clock.now()
        outcome = PushOutcome()
        with gc_paused(), self.engine.begin() as conn:
            routed = self._route(alerts)
            known = store.known_ends(conn, list(routed))
            rows: list[dict[str, Any]] = []
            firing: dict[tuple[str, str], list[tuple[PushedAlert, Labels, bool]]] = {}
            grouped: dict[tuple[str, str], tuple[CompiledRoute, Labels]] = {}
            resolved_keys: set[str] = set()
            for fp, (route, pushed, labels) in routed.items():
                grouping = route.grouping(pushed.labels)
                key = group_key(route.route.rule_id, grouping)
                if pushed.resolved(now):
                    outcome.resolved += 1
                    resolved_keys.add(key)
                else:
                    ends = known.get(fp)
                    fresh = ends is None or ends <= now  # new, or firing again after it ended
                    firing.setdefault((route.route.name, key), []).append((pushed, labels, fresh))
                    grouped[(route.route.name, key)] = (route, grouping)
                    outcome.firing += 1
                rows.append(
                    store.row(
                        fp,
                        route.route.rule_id,
                        key,
                        route.route.name,
                        sender,
                        dict(pushed.labels),
                        dict(pushed.annotations),
                        pushed.generator_url,
                        pushed.starts_at,
                        pushed.ends_at,
                        now,
                        pushed.timeout,
                    )
                )
            per_route: dict[str, list[Alert]] = {}
            # evidence lines go to groups that open (or reopen) an incident with this push
            live = store.active_groups(conn, [key for _, key in firing])
            for (name, key), members in firing.items():
                route, grouping = grouped[(name, key)]
                lines = 0 if key in live else EVIDENCE_LINES
                per_route.setdefault(name, []).append(
                    to_alert(route, grouping, members, now, self._redact, lines)
                )
            store.write(conn, rows, set(known))
            results = self._ingest(conn, per_route, now)
            for result in results:
                outcome.created.extend(result.created)
            ended = store.ended_incidents(conn, now, sorted(resolved_keys)) if resolved_keys else []
        return outcome, results, ended

    def _route(
        self, alerts: Sequence[PushedAlert]
    ) -> dict[str, tuple[CompiledRoute, PushedAlert, tuple[tuple[str, str], ...]]]:
        """Each alert's route and fingerprint; a label set pushed twice counts once (the last)."""
        routed = {}
        for pushed in alerts:
            route = route_for(self.routes, pushed.labels)
            labels = label_set(pushed.labels)
            routed[alert_fingerprint(route, labels)] = (route, pushed, labels)
        return routed

    def _ingest(
        self, conn: Connection, firing: dict[str, list[Alert]], now: datetime
    ) -> list[IngestResult]:
        if not firing:
            return []
        silences = muter_for(conn, now, active_silences(conn, now))
        by_name = {r.route.name: r.route for r in self.routes}
        results = []
        for name, alerts in firing.items():
            policy = replace(self.policy, realert=by_name[name].realert)
            results.append(ingest(conn, alerts, now, policy, silences))
        return results

    async def _clear_all(self, incident_ids: Sequence[int]) -> list[int]:
        cleared = []
        for incident_id in incident_ids:
            try:
                await self._clear(incident_id)
                cleared.append(incident_id)
            except BotError as exc:  # resolved by someone meanwhile: nothing to do
                log.info("push: INC-%s not cleared: %s", incident_id, exc)
        return cleared
