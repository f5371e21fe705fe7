"""Composition root: Settings -> objects. The only module of ``bot`` importing integrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from bot.authz import Roles
from bot.charts.delivery import ChartDelivery
from bot.charts.service import charts_from_settings
from bot.domain.card import CardOptions
from bot.domain.durations import format_duration
from bot.domain.incident import Command, CommandKind, State
from bot.domain.rca import RcaReport, RcaStatus
from bot.errors import ConfigError, Conflict, PermanentError, TransientError
from bot.events import Broadcaster, Change
from bot.health import Readiness
from bot.interactions import Interactions
from bot.metrics import Metrics
from bot.operations import Operations
from bot.outbox import OutboxWorker
from bot.pipeline.enrich import Enricher
from bot.pipeline.escalate import EscalationPolicy, EscalationRule, page_due
from bot.pipeline.ingest import IngestPolicy, IngestResult
from bot.pipeline.notify import Router, RouteRule, Target
from bot.ports import (
    ChatSurface,
    Clock,
    DirectSurface,
    Health,
    HealthStatus,
    Pager,
    RcaEngine,
    SearchBackend,
    SystemClock,
)
from bot.readiness import readiness_report
from bot.redaction import Redactor
from bot.retention import purge
from bot.scheduler import RuleRunner, Scheduler
from bot.settings import Settings
from bot.similar.service import Similar
from bot.store import leases, replicas
from bot.store.db import SchemaTooNew, check_connection, make_engine, migrate
from bot.store.repo import INCIDENTS
from detectors.feeds import FeedSet
from detectors.fields import load_extractor
from detectors.model import Rule
from detectors.rules import load_inhibit_rules, load_rules
from integrations.alertmanager.wiring import from_settings as push_from_settings
from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings
from integrations.console import ConsoleChatSurface
from integrations.executors import build_executors, load_executor_settings
from integrations.heuristic import HeuristicRcaEngine
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.generator import Generator
from integrations.local.snapshots import ingest_snapshot
from integrations.pagerduty import (
    PagerDutyPager,
    PagerDutySettings,
    load_pagerduty_settings,
    webhook_router,
)
from integrations.slack import SlackIntegration, SlackSettings, build_slack, load_slack_settings
from integrations.splunk import SplunkSearchBackend, load_splunk_settings
from integrations.teams import TeamsIntegration, TeamsSettings, build_teams, load_teams_settings
from integrations.teams.package import build_package
from playbooks.wiring import RemediationParts, load_registry
from playbooks.wiring import from_settings as remediation_from_settings

log = logging.getLogger(__name__)
SCHEDULER_LEASE = "scheduler"


class _OffRca:
    async def explain(self, incident: Any, evidence: Any, context: Any) -> RcaReport:
        return RcaReport(RcaStatus.UNAVAILABLE, "root-cause analysis is turned off (BOT_RCA=off)")


@dataclass(slots=True)
class DatabaseStatus:
    ready: bool = False
    reason: str = "connecting"


def build_router(settings: Settings, defaults: Mapping[str, str]) -> Router:
    """Routes from settings for the surfaces in use; ``defaults`` maps each surface to its
    default channel (empty: only routed incidents go there)."""
    rules = tuple(
        RouteRule(
            Target(r.surface, r.channel),
            frozenset(r.severity),
            frozenset(r.category),
            frozenset(r.service),
        )
        for r in settings.routes
        if r.surface in defaults
    )
    return Router(rules, tuple(Target(name, ch) for name, ch in defaults.items() if ch))


def build_escalation(settings: Settings, pagers: Mapping[str, Pager]) -> EscalationPolicy | None:
    """The escalation policy, when a pager is set up (the first one configured pages)."""
    if not pagers:
        return None
    rules = tuple(
        EscalationRule(
            e.after, e.routing, frozenset(e.severity), frozenset(e.category), frozenset(e.service)
        )
        for e in settings.escalation
    )
    return EscalationPolicy(next(iter(pagers)), rules)


def build_teams_package(settings: Settings, out: Path) -> Path:
    """The Teams app package (manifest and icons) to upload in Teams."""
    teams = TeamsSettings()
    if not teams.app_id:
        raise ConfigError("TEAMS_APP_ID: required to build the Teams app package")
    return build_package(teams.app_id, out, settings.console_url)


class Runtime:
    """Everything one bot process runs; ``start``/``stop`` bracket its life."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        backend: SearchBackend | None = None,
        rca: RcaEngine | None = None,
        rules: list[Rule] | None = None,
        teams: TeamsSettings | None = None,
        teams_tokens: Any = None,
        slack: SlackSettings | None = None,
    ) -> None:
        """Integrations are built from their own settings (``SPLUNK_*``, ``TEAMS_*``, …);
        tests may hand in a search backend, an RCA engine, rules, Teams settings and a Teams
        token provider instead."""
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.health = Readiness(self.clock, self.metrics.registry)  # /ready, failing since when
        self.broadcaster = Broadcaster()
        self.splunk = load_splunk_settings() if settings.search_backend == "splunk" else None
        self.pagerduty: PagerDutySettings | None = None
        if PagerDutySettings().enabled:
            paging = {e.routing for e in settings.escalation if e.after is not None}
            self.pagerduty = load_pagerduty_settings(channels=paging)
        self.teams_settings = (teams or load_teams_settings()).validate_for_host(settings.http_host)
        self.slack_settings = slack or load_slack_settings()
        secrets = [
            *settings.secret_values(),
            *self.teams_settings.secret_values(),
            *self.slack_settings.secret_values(),
            *(self.splunk.secret_values() if self.splunk else []),
            *(self.pagerduty.secret_values() if self.pagerduty else []),
        ]
        self.redactor = Redactor(settings.redaction_mode, secrets)
        self.roles = (
            Roles.load(settings.roles_file) if settings.roles_file else Roles.embedded_default()
        )
        self.rules = (
            rules
            if rules is not None
            else load_rules(
                settings.rule_paths,
                include_shipped=settings.shipped_rules,
                local_spl=settings.search_backend == "local",
            )
        )
        self.engine = make_engine(settings.database_url)
        self.db = DatabaseStatus()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # the scheduler lease; every write a lease holder makes goes through `fenced_engine`
        # (or calls `self.lease.fence(conn)` in its transaction): see docs/replicas.md
        self.lease = leases.LeaseKeeper(
            self.engine,
            SCHEDULER_LEASE,
            self.holder,
            settings.lease_heartbeat,
            on_takeover=self.metrics.lease_takeovers.inc,
            on_refusal=self.metrics.fenced_writes.inc,
        )
        self.fenced_engine = self.engine.execution_options(fenced=SCHEDULER_LEASE)
        event.listen(self.fenced_engine, "begin", self.lease.fence)
        self.fatal = ""  # why this process refused to run (a schema newer than this build)
        self.on_fatal: Any = lambda reason: None
        self.surfaces: dict[str, ChatSurface] = {"console": ConsoleChatSurface(self.broadcaster)}
        defaults = {"console": "console"}
        if self.teams_settings.enabled:
            defaults["teams"] = self.teams_settings.default_channel
        if self.slack_settings.enabled:
            defaults["slack"] = self.slack_settings.default_channel
        self.router = build_router(settings, defaults)
        self.event_store: EventStore | None = None
        if backend is None and self.splunk is not None:
            backend = SplunkSearchBackend(self.splunk, clock=self.clock)
        extractor = load_extractor(settings.field_extraction_paths)  # ConfigError: file:line
        if backend is None:
            self.event_store = EventStore(settings.local_events_path)
            backend = LocalSearchBackend(self.event_store, extractor)
        self.backend = backend
        # the generator answers `simulate` even when its background scenarios are off
        self.generator = (
            Generator(self.event_store, index_lag=settings.generator_index_lag)
            if self.event_store is not None
            else None
        )
        self.embedded = self.event_store is not None  # the embedded default (local logs)
        self.registry = load_registry(settings, self.rules, self.embedded)
        self.pagers: dict[str, Pager] = (
            {"pagerduty": PagerDutyPager(self.pagerduty)} if self.pagerduty else {}
        )
        self.escalation = build_escalation(settings, self.pagers)
        self.similar = Similar.for_engine(self.engine)  # indexes incidents as they resolve
        self.card_options = CardOptions(
            settings.console_url,
            escalate=bool(self.pagers),
            reanalyse=settings.rca != "off",
            similar=self.similar.card_line,
        )
        self.interactions = Interactions(
            self.engine,
            self.roles,
            self.router,
            self.clock,
            on_commit=self._changed,
            on_result=lambda c, r: self.metrics.commands.labels(c.kind.value, c.surface, r).inc(),
            escalation=self.escalation,
            on_reanalyse=lambda incident_id: self.enricher.submit([incident_id], force=True),
        )
        self.playbooks: RemediationParts = remediation_from_settings(
            settings,
            engine=self.engine,
            registry=self.registry,
            executors=build_executors(load_executor_settings(), self.generator, self.embedded),
            rules=self.rules,
            backend=self.backend,
            interactions=self.interactions,
            router=self.router,
            clock=self.clock,
            redactor=self.redactor,
            roles=self.roles,
            holder=self.holder,
            direct_surfaces=("console",),
            paging=self.escalation is not None,
            embedded=self.embedded,
            on_commit=self._changed,
            on_outcome=lambda p, c, o: self.metrics.remediation_runs.labels(p, c, o).inc(),
            on_refusal=lambda reason: self.metrics.remediation_refusals.labels(reason).inc(),
        )
        self.card_options = replace(
            self.card_options, remediation=self.playbooks.remediation.card_part
        )
        self.operations = Operations(
            self.engine,
            self.interactions,
            self.roles,
            self.clock,
            self.card_options,
            [(r.id, r.title, r.enabled) for r in self.rules],
            on_silence=lambda: self.runner.silences_changed(),
        )
        self.operations.remediation = self.playbooks.remediation
        self.teams: TeamsIntegration | None = None
        if self.teams_settings.enabled:
            self.teams = build_teams(
                self.teams_settings,
                self.operations,
                self.engine,
                settings.console_url,
                self.clock,
                token_provider=teams_tokens,
            )
            self.surfaces["teams"] = self.teams.surface
        self.slack: SlackIntegration | None = None
        if self.slack_settings.enabled:
            self.slack = build_slack(self.slack_settings, self.operations, settings.console_url)
            self.surfaces["slack"] = self.slack.surface
        self.playbooks.remediation.deps.direct_surfaces = tuple(
            name for name, found in self.surfaces.items() if isinstance(found, DirectSurface)
        )
        self.outbox = OutboxWorker(
            self.engine,
            self.surfaces,
            self.clock,
            self.card_options,
            {
                **(self.pagerduty.outbox_rate_limit() if self.pagerduty else {}),
                **(self.slack_settings.outbox_rate_limits() if self.slack else {}),
                **settings.outbox_rate_limits,
            },
            settings.outbox_max_attempts,
            on_delivered=self.metrics.delivered,
            pagers=self.pagers,
            digest_after={"slack": self.slack_settings.digest_after} if self.slack else None,
            holder=self.holder,
            claim_timeout=settings.outbox_claim_timeout,
            on_claimed=self.metrics.outbox_claims.inc,
        )
        # the chart of what each rule saw: console page, Slack thread, Teams card image
        self.charts = charts_from_settings(
            settings, self.engine, self.backend, self.rules, self.clock
        )
        self.outbox.charts = ChartDelivery(self.charts, self.engine, self.clock)
        if self.teams is not None:
            self.teams.charts.url_of = self.charts.image_url
        rca_timeout = settings.rca_timeout
        if rca is None:
            if settings.rca == "bedrock":
                bedrock = load_bedrock_settings()
                rca = BedrockRcaEngine(
                    bedrock, self._heuristic(), self.redactor, playbooks=self.registry.ids()
                )
                # a late Bedrock answer still leaves time for the heuristic fallback
                rca_timeout = max(rca_timeout, bedrock.timeout + timedelta(seconds=5))
            elif settings.rca == "heuristic":
                rca = self._heuristic()
            else:
                rca = _OffRca()
        self.rca = rca
        self._report_calls()
        rule_context = {r.id: (r.query, format_duration(r.window)) for r in self.rules}
        self.enricher = Enricher(
            self.engine,
            rca,
            self.router,
            self.clock,
            rca_timeout,
            on_commit=self._changed,
            rule_context=lambda rule_id: rule_context.get(rule_id, ("", "")),
            redact=self.redactor.redact,
            on_analysed=self._analysed,
        )
        self.runner = RuleRunner(
            self.fenced_engine,
            self.backend,
            self.rules,
            self.clock,
            self.redactor.redact,
            self._policy_for,
            self.metrics,
            on_ingested=self._ingested,
            max_index_lag=settings.max_index_lag,
            feeds=FeedSet(
                self.backend,
                self.rules,
                max_index_lag=settings.max_index_lag,
                late_sweep=settings.late_sweep,
                max_events=settings.feed_max_events,
                extractor=extractor,
            )
            if settings.shared_searches
            else None,
            clear=lambda incident_id: self.interactions.execute(
                incident_id, Command(CommandKind.CLEAR, actor="bot", surface="scheduler")
            ),
        )
        self.runner.inhibit_rules = tuple(
            load_inhibit_rules(settings.rule_paths, include_shipped=settings.shipped_rules)
        )
        self.push = push_from_settings(
            settings.push,
            engine=self.engine,
            clock=self.clock,
            policy=self._policy_for_push(),
            clear=lambda incident_id: self.interactions.execute(
                incident_id, Command(CommandKind.CLEAR, actor="bot", surface="push")
            ),
            on_ingested=self._ingested,
            redact=self.redactor.redact,
            registry=self.metrics.registry,
            rules=self.rules,
        )
        self.scheduler = Scheduler(
            self.runner,
            settings.schedule_jitter,
            chores=[
                ("expire-suppressions", timedelta(seconds=15), self.expire_suppressions),
                ("retention", timedelta(days=1), self.retention),
                ("rule-next-runs", timedelta(seconds=30), self._record_next_runs),
                ("page-due", timedelta(seconds=10), self.page_due),
                *self.playbooks.chores,
                *self.push.chores,
            ],
        )
        self.leader = False
        self._search_checked: datetime | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._spawn(self._connect_and_lead(), "database")
        if self.slack is not None:
            await self.slack.start()  # learns its identity, opens Socket Mode: never waits

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self.slack is not None:
            await self.slack.stop()  # acknowledged presses finish while the database is up
        self.scheduler.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.playbooks.stop()  # runs cut short here become interrupted on the next leader
        if self.db.ready:
            with contextlib.suppress(Exception):  # the next holder takes over at once
                if self.leader:
                    await asyncio.to_thread(
                        leases.release, self.engine, SCHEDULER_LEASE, self.holder, self.clock.now()
                    )
                await asyncio.to_thread(replicas.forget, self.engine, self.holder)
        self.lease.drop()
        self.leader = False
        if self.event_store is not None:
            self.event_store.close()
        for closable in (self.rca, *self.pagers.values()):
            close = getattr(closable, "close", None)
            if callable(close):
                close()
        self.engine.dispose()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)

    async def connect(self, attempts: int | None = None) -> None:
        """Reach the database and migrate it, retrying with backoff; /ready shows the reason."""
        delay, tried = 0.5, 0
        while True:
            tried += 1
            try:
                await asyncio.to_thread(check_connection, self.engine)
                await asyncio.to_thread(migrate, self.engine)
            except TransientError as exc:
                self.db = DatabaseStatus(False, str(exc))
                log.error("%s; retrying in %.0fs", exc, delay)
                if attempts is not None and tried >= attempts:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.db = DatabaseStatus(True, "migrated")
            return

    async def acquire_lease(self) -> bool:
        """Take or renew the scheduler lease once (the lead loop does this every heartbeat)."""
        return await asyncio.to_thread(self.lease.renew, self.clock.now())

    async def _connect_and_lead(self) -> None:
        assert self._stop is not None
        try:
            await self.connect()
        except SchemaTooNew as exc:
            self.fatal = str(exc)
            self.db = DatabaseStatus(False, self.fatal)
            log.critical("refusing to start: %s", exc)
            self.on_fatal(self.fatal)
            return
        log.info(
            "database ready; %d rules loaded; console at %s",
            len(self.rules),
            self.settings.console_url,
        )
        # every replica delivers the outbox and runs analyses: neither waits for the lease
        self._spawn(self.outbox.run(self._stop), "outbox")
        self._spawn(self.enricher.run(self._stop), "enricher")
        beat = self.settings.lease_heartbeat.total_seconds()
        while not self._stop.is_set():
            started = asyncio.get_running_loop().time()
            renewing = asyncio.ensure_future(self._renew(beat))
            if self.leader:  # a slow renewal must not keep the schedules past the deadline
                await asyncio.wait({renewing}, timeout=self.lease.seconds_left() + 0.01)
                self._check_lease()
            held = await renewing
            if held and not self.leader:
                self.leader = True
                self.runner.forget_state()
                log.info(
                    "this replica now runs the schedules (%s, generation %d)",
                    self.holder,
                    self.lease.lease.generation if self.lease.lease else 0,
                )
                self._lead()
            self._check_lease()
            if held:  # renew a heartbeat after the last try; pause in time if it fails
                wait = beat - (asyncio.get_running_loop().time() - started)
                wait = min(wait, self.lease.seconds_left() + 0.01)
            else:  # try again the moment the holder's lease expires
                wait = self.lease.wait_before_retry(self.clock.now())
            try:
                async with asyncio.timeout(max(0.01, wait)):
                    await self._stop.wait()
            except TimeoutError:
                pass

    async def _renew(self, beat: float) -> bool:
        """One heartbeat: renew (or try to take) the lease and say this replica is alive."""
        now = self.clock.now()
        try:
            async with asyncio.timeout(beat):
                held = await asyncio.to_thread(self.lease.renew, now)
        except Exception as exc:  # the database went away: keep serving, try again
            log.warning("lease renewal failed: %s", exc)
            held = self.lease.held  # still trusted until the local deadline
        try:
            async with asyncio.timeout(beat):
                await asyncio.to_thread(
                    replicas.beat,
                    self.engine,
                    self.holder,
                    now,
                    "leader" if held else "",
                    self.settings.lease_heartbeat * 20,
                )
        except Exception as exc:
            log.debug("replica heartbeat not recorded: %s", exc)
        return held

    def _check_lease(self) -> None:
        """A holder whose lease is no longer trusted stops scheduling before anyone else may
        start (in-flight writes are refused by the fence)."""
        if self.leader and not self.lease.held:
            self.leader = False
            self.lease.drop()
            log.warning("scheduler lease lost or not renewed in time; pausing schedules")
            self.scheduler.pause()

    def _lead(self) -> None:
        assert self._stop is not None
        self._spawn(self.playbooks.on_lead(), "interrupted-runs")
        if self.scheduler.running:
            self.scheduler.resume()
            return
        self.scheduler.start()
        if self.generator is not None:  # without background scenarios: those simulated go on
            background = self.settings.generator_enabled
            self._spawn(
                self.generator.run(self.clock, self._stop, background=background), "generator"
            )

    # hooks -----------------------------------------------------------------------------------

    def _heuristic(self) -> HeuristicRcaEngine:
        return HeuristicRcaEngine(
            playbooks=self.registry.ids(), suggestions=self.registry.suggestions()
        )

    def _analysed(self, incident_id: int) -> None:
        """After an incident's analysis: an automatic run, when its rule or playbook allows."""
        task = asyncio.get_running_loop().create_task(
            self.playbooks.after_analysis(incident_id), name=f"auto-{incident_id}"
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _policy_for(self, rule: Rule) -> IngestPolicy:
        return IngestPolicy(
            router=self.router,
            flap_window=self.settings.flap_window,
            card_refresh=self.settings.card_refresh,
            realert=rule.realert,
            escalation=self.escalation,
        )

    def _policy_for_push(self) -> IngestPolicy:
        return IngestPolicy(
            self.router,
            self.settings.flap_window,
            self.settings.card_refresh,
            escalation=self.escalation,
        )

    def _ingested(self, result: IngestResult) -> None:
        for incident_id in result.new_or_reopened:
            self.enricher.submit([incident_id], severity_rank=result.ranks.get(incident_id, 2))
        if result.messages:
            self.outbox.wake()
        for incident_id in result.updated:
            self.broadcaster.publish(Change(incident_id, "update"))

    def _changed(self) -> None:
        self.outbox.wake()

    # chores ----------------------------------------------------------------------------------

    async def expire_suppressions(self) -> int:
        now = self.clock.now()

        def due() -> list[int]:
            with self.engine.connect() as conn:
                return [
                    r[0]
                    for r in conn.execute(
                        select(INCIDENTS.c.id).where(
                            INCIDENTS.c.state == State.SUPPRESSED.value,
                            INCIDENTS.c.suppressed_until <= now,
                        )
                    )
                ]

        expired = 0
        for incident_id in await asyncio.to_thread(due):
            try:
                await self.interactions.execute(
                    incident_id, Command(CommandKind.EXPIRE, actor="bot", surface="scheduler")
                )
                expired += 1
            except Conflict:
                continue
        return expired

    def webhook_routers(self) -> list[Any]:
        """HTTP routes of the integrations that receive calls (mounted by the server)."""
        routers = []
        if self.teams is not None:
            routers.append(self.teams.router)
        if self.slack is not None:
            routers.append(self.slack.router)
        if self.pagerduty is not None and self.pagerduty.webhook_secrets:
            routers.append(webhook_router(self.pagerduty, self.operations, self.engine, self.clock))
        routers.extend(self.push.routers)
        return routers

    async def ingest_snapshot(self, payload: object) -> int:
        """An endpoint snapshot into the local backend (PermanentError names bad fields)."""
        if self.event_store is None:
            raise PermanentError(
                "snapshots need the local search backend (BOT_SEARCH_BACKEND=local)"
            )
        return await asyncio.to_thread(ingest_snapshot, self.event_store, payload)

    async def page_due(self) -> list[int]:
        """Page incidents whose escalation timer ran out while they stayed open."""
        if self.escalation is None:
            return []
        paged = await asyncio.to_thread(
            page_due, self.fenced_engine, self.escalation, self.clock.now()
        )
        if paged:
            self.outbox.wake()
        return paged

    async def retention(self) -> None:
        now = self.clock.now()
        s = self.settings
        await asyncio.to_thread(
            purge, self.fenced_engine, now, s.retention_days, s.audit_retention_days
        )
        if self.event_store is not None:
            await asyncio.to_thread(
                self.event_store.purge_before, now - timedelta(days=s.retention_days)
            )

    async def _record_next_runs(self) -> None:
        await asyncio.to_thread(self.runner.record_next_runs, self.scheduler.next_runs())

    # health ----------------------------------------------------------------------------------

    def _report_calls(self) -> None:
        """Searches and Bedrock analyses report each outcome to /ready as they happen."""
        if isinstance(self.backend, SplunkSearchBackend):
            self.backend.on_health = self.health.hook("search", checked=True)
        if isinstance(self.rca, BedrockRcaEngine):
            self.rca.on_health = self.health.hook("rca:bedrock")
            self.health.observe("rca:bedrock", Health(HealthStatus.OK, "no analysis asked yet"))

    async def readiness(self) -> dict[str, Any]:
        """Each dependency's status and reason; a failing one says since when (bot.readiness)."""
        return await readiness_report(self)
