"""Push receiver: a request's alerts -> the journal (answered) -> the pipeline.

A push is answered once its alerts are in the journal (:mod:`bot.push.journal`). An applier
task then takes the queued entries, as many as have queued up (within a bound), in one
transaction: route (first matching route, its group_by), remember (the ``push_alerts``
record: new, refreshed or resolved), ingest (the firing ones, through
:func:`bot.pipeline.ingest.ingest`), mark the entries applied; then clear (groups whose every
alert has ended resolve through the one writer, a ``CLEAR`` command, as rule recovery does).
Entries in which an alert changes between firing and resolved are applied in separate steps,
so every change counts. Expiry of alerts nobody refreshed runs as a chore.
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
from bot.push.journal import Entry, Journal
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
#: how long the applier waits before trying again after a failure (doubling up to the last)
RETRY_PAUSES = (0.5, 1.0, 2.0, 5.0, 15.0)


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
        self.journal = Journal(engine)
        self._journaled = 0  # the last entry this process wrote
        self._settled = 0  # every entry up to this one (this process's) is applied
        self._more = False  # an entry came while the applier was reading the journal
        self._applier: asyncio.Task[None] | None = None
        self._progress = asyncio.Condition()  # notified when ``_settled`` moves
        self._closing = False

    async def receive(self, alerts: Sequence[PushedAlert], sender: str) -> PushOutcome:
        """Journal one push; answers once it is durable. The applier task applies it."""
        now = self.clock.now()
        outcome = PushOutcome()
        for pushed in alerts:
            if pushed.resolved(now):
                outcome.resolved += 1
            else:
                outcome.firing += 1
        if not alerts:
            return outcome
        await self._open()
        entry = await asyncio.to_thread(self.journal.append, sender, alerts, now)
        self._journaled = max(self._journaled, entry)
        self.kick()
        return outcome

    async def settled(self, within: float = 30.0) -> bool:
        """Wait until every push this process journaled so far is applied (or ``within``
        seconds passed: answers whether it is)."""
        target = self._journaled
        if self._settled >= target:
            return True
        self.kick()
        async with self._progress:
            try:
                async with asyncio.timeout(within):
                    await self._progress.wait_for(lambda: self._settled >= target)
            except TimeoutError:
                return False
        return True

    def kick(self) -> None:
        """Make sure the applier runs (it stops when the journal is empty)."""
        self._more = True
        if self._applier is None or self._applier.done():
            self._applier = asyncio.get_running_loop().create_task(
                self._drain(), name="push-applier"
            )

    async def apply_pending(self) -> None:
        """Apply what waits in the journal: entries left by a crash, or by a replica that
        stopped, are found this way."""
        self.kick()
        if self._applier is not None:
            await asyncio.wait({self._applier})  # its end, never its cancellation

    async def aclose(self, within: float = 10.0) -> None:
        """Let a running step finish (``within`` seconds), then close the journal; what is
        left in it is applied at the next start."""
        self._closing = True
        if self._applier is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._applier), within)
            except TimeoutError:
                self._applier.cancel()
        self.journal.close()

    @property
    def journal_ready(self) -> bool:
        """The journal was opened (on SQLite its file exists from the first push or step)."""
        return self.journal.opened

    async def _open(self) -> None:
        if not self.journal.opened:
            await asyncio.to_thread(self.journal.open)

    async def _drain(self) -> None:
        failures = 0
        while self._more and not self._closing:
            self._more = False
            seen = self._journaled
            try:
                await self._open()
                async with self._lock:
                    step = await asyncio.to_thread(self._retrying, self._apply_pending)
            except Exception as exc:  # the database is away: the entries wait in the journal
                self.journal.rolled_back()
                pause = RETRY_PAUSES[min(failures, len(RETRY_PAUSES) - 1)]
                failures += 1
                log.warning("push: applying the journal failed (%s); again in %.1fs", exc, pause)
                self._more = True
                await asyncio.sleep(pause)
                continue
            failures = 0
            if step is None:  # nothing was waiting when the transaction began
                async with self._progress:
                    self._settled = max(self._settled, seen)
                    self._progress.notify_all()
                continue
            results, ended = step
            self._more = True  # there may be more than one transaction's worth
            for result in results:
                self._on_ingested(result)
            await self._clear_all(ended)

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
        """Resolve the groups whose every alert has ended (nobody refreshed them). Pushes
        still in the journal are applied first (one may refresh an alert about to end); while
        a backlog is being applied, expiry waits for its next turn."""
        self.kick()  # also finds what a crash or a stopped replica left
        if not await self.settled(within=5.0):
            return []

        def ended() -> list[int]:
            now = self.clock.now()
            with self.engine.begin() as conn:
                found = store.ended_incidents(conn, now)
                store.forget_ended(conn, now - KEEP_ENDED)
                return found

        async with self._lock:
            found = await asyncio.to_thread(ended)
        return await self._clear_all(found)

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

    def _apply_pending(self) -> tuple[list[IngestResult], list[int]] | None:
        """One step: the oldest queued entries, applied in one transaction (None: none)."""
        now = self.clock.now()
        with gc_paused(), self.engine.begin() as conn:
            self.journal.lock(conn)
            entries = _one_state_each(self.journal.pending(conn), now)
            if not entries:
                return None
            items = [(alert, entry.sender) for entry in entries for alert in entry.alerts]
            results, ended = self._apply(conn, items, now)
            self.journal.mark_applied(conn, entries, now)
        self.journal.committed(entries)
        return results, ended

    def _apply(
        self, conn: Connection, items: Sequence[tuple[PushedAlert, str]], now: datetime
    ) -> tuple[list[IngestResult], list[int]]:
        routed = self._route(items)
        known = store.known_ends(conn, list(routed))
        rows: list[dict[str, Any]] = []
        firing: dict[tuple[str, str], list[tuple[PushedAlert, Labels, bool]]] = {}
        grouped: dict[tuple[str, str], tuple[CompiledRoute, Labels]] = {}
        resolved_keys: set[str] = set()
        for fp, (route, pushed, labels, sender) in routed.items():
            grouping = route.grouping(pushed.labels)
            key = group_key(route.route.rule_id, grouping)
            if pushed.resolved(now):
                resolved_keys.add(key)
            else:
                ends = known.get(fp)
                fresh = ends is None or ends <= now  # new, or firing again after it ended
                firing.setdefault((route.route.name, key), []).append((pushed, labels, fresh))
                grouped[(route.route.name, key)] = (route, grouping)
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
        ended = store.ended_incidents(conn, now, sorted(resolved_keys)) if resolved_keys else []
        return results, ended

    def _route(
        self, items: Sequence[tuple[PushedAlert, str]]
    ) -> dict[str, tuple[CompiledRoute, PushedAlert, Labels, str]]:
        """Each alert's route and fingerprint; a label set pushed twice counts once (the last)."""
        routed = {}
        for pushed, sender in items:
            route = route_for(self.routes, pushed.labels)
            labels = label_set(pushed.labels)
            routed[alert_fingerprint(route, labels)] = (route, pushed, labels, sender)
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


def _one_state_each(entries: Sequence[Entry], now: datetime) -> list[Entry]:
    """The leading entries in which no alert both fires and has ended: a step applies one
    state per alert, so an alert resolved and fired again (or the reverse) between two queued
    pushes is applied in two steps, and every change is seen."""
    state: dict[Labels, bool] = {}
    taken: list[Entry] = []
    for entry in entries:
        mine = {label_set(a.labels): a.resolved(now) for a in entry.alerts}
        if any(state.get(labels, ended) != ended for labels, ended in mine.items()):
            break
        state.update(mine)
        taken.append(entry)
    return taken
