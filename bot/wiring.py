"""Composition root: Settings -> objects. With its parts in ``bot/wiring_*.py`` (settings,
search, chat, RCA) the only place in ``bot`` that imports integrations: each integration is
built from its settings and registers what it offers; :class:`Runtime` keeps the process's life
(start, stop, lead, health)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.authz import Roles
from bot.charts.delivery import ChartDelivery
from bot.charts.service import charts_from_settings
from bot.chores import Chores
from bot.domain.card import CardOptions
from bot.domain.durations import format_duration
from bot.domain.incident import Command, CommandKind
from bot.errors import PermanentError, TransientError
from bot.events import Broadcaster, Change
from bot.health import Readiness
from bot.interactions import Interactions
from bot.metrics import Metrics
from bot.operations import Operations
from bot.outbox import OutboxWorker
from bot.pipeline.enrich import Enricher
from bot.pipeline.ingest import IngestPolicy, IngestResult
from bot.ports import Clock, Pager, RcaEngine, SearchBackend, SystemClock
from bot.readiness import readiness_report
from bot.redaction import Redactor
from bot.replica import SCHEDULER_LEASE, Replica
from bot.scheduler import RuleRunner, Scheduler
from bot.settings import Settings
from bot.similar.service import Similar
from bot.store.db import SchemaTooNew, check_connection, make_engine, migrate
from bot.wiring_chat import build_teams_package, default_channels
from bot.wiring_chat import from_settings as chat_from_settings
from bot.wiring_rca import from_settings as rca_from_settings
from bot.wiring_rca import initial_rca, report_calls
from bot.wiring_search import from_settings as search_from_settings
from bot.wiring_search import rules_from_settings
from bot.wiring_settings import IntegrationSettings, build_escalation, build_router
from detectors.model import Rule
from detectors.rules import load_inhibit_rules
from integrations.alertmanager.wiring import from_settings as push_from_settings
from integrations.executors import build_executors, load_executor_settings
from integrations.local.snapshots import ingest_snapshot
from integrations.slack import SlackSettings
from integrations.teams import TeamsSettings
from playbooks.wiring import RemediationParts, load_registry
from playbooks.wiring import from_settings as remediation_from_settings

log = logging.getLogger(__name__)
__all__ = ["SCHEDULER_LEASE", "Runtime", "build_escalation", "build_router", "build_teams_package"]


@dataclass(slots=True)
class DatabaseStatus:
    ready: bool = False
    reason: str = "connecting"


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
        configured = IntegrationSettings.load(settings, teams, slack)
        self.splunk, self.pagerduty = configured.splunk, configured.pagerduty
        self.teams_settings, self.slack_settings = configured.teams, configured.slack
        secrets = [*settings.secret_values(), *configured.secret_values()]
        self.redactor = Redactor(settings.redaction_mode, secrets)
        self.roles = (
            Roles.load(settings.roles_file) if settings.roles_file else Roles.embedded_default()
        )
        self.rules = rules if rules is not None else rules_from_settings(settings)
        self.engine = make_engine(settings.database_url)
        self.db = DatabaseStatus()
        # the scheduler lease; every write a lease holder makes goes through `fenced_engine`
        # (or calls `self.lease.fence(conn)` in its transaction): see docs/replicas.md
        self.replica = Replica.join(
            self.engine,
            settings.lease_heartbeat,
            on_takeover=self.metrics.lease_takeovers.inc,
            on_refusal=self.metrics.fenced_writes.inc,
        )
        self.holder, self.lease = self.replica.holder, self.replica.lease
        self.fenced_engine = self.replica.fenced_engine
        self.fatal = ""  # why this process refused to run (a schema newer than this build)
        self.on_fatal: Any = lambda reason: None
        self.router = build_router(
            settings, default_channels(self.teams_settings, self.slack_settings)
        )
        search = search_from_settings(
            settings, splunk=self.splunk, rules=self.rules, clock=self.clock, backend=backend
        )
        self.backend, self.event_store = search.backend, search.event_store
        self.generator = search.generator  # answers `simulate` even with scenarios off
        self.embedded = search.embedded  # the embedded default (local logs)
        self.registry = load_registry(settings, self.rules, self.embedded)
        self.pagers: dict[str, Pager] = {}
        if self.pagerduty:
            from integrations.pagerduty import PagerDutyPager  # the pagerduty library

            self.pagers["pagerduty"] = PagerDutyPager(self.pagerduty)
        self.escalation = build_escalation(settings, self.pagers)
        self.similar = Similar.for_engine(self.engine)  # indexes incidents as they resolve
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
        self.card_options = CardOptions(
            settings.console_url,
            escalate=bool(self.pagers),
            reanalyse=settings.rca != "off",
            remediation=self.playbooks.remediation.card_part,
            similar=self.similar.card_line,
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
        self.chat = chat_from_settings(
            self.teams_settings,
            self.slack_settings,
            operations=self.operations,
            engine=self.engine,
            console_url=settings.console_url,
            clock=self.clock,
            broadcaster=self.broadcaster,
            teams_tokens=teams_tokens,
        )
        self.surfaces, self.teams, self.slack = self.chat.surfaces, self.chat.teams, self.chat.slack
        self.playbooks.remediation.deps.direct_surfaces = self.chat.direct()
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
        self.rca, rca_timeout = rca_from_settings(
            settings, registry=self.registry, redactor=self.redactor, rca=rca
        )
        report_calls(self.health, self.backend, self.rca)
        self._rca_json = initial_rca(self.rca)
        rule_context = {r.id: (r.query, format_duration(r.window)) for r in self.rules}
        self.enricher = Enricher(
            self.engine,
            self.rca,
            self.router,
            self.clock,
            rca_timeout,
            on_commit=self._changed,
            rule_context=lambda rule_id: rule_context.get(rule_id, ("", "")),
            redact=self.redactor.redact,
            on_analysed=self._analysed,
        )
        self.enricher.card_first = self.outbox.cards_out
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
            feeds=search.feeds,
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
            policy=IngestPolicy(
                self.router,
                settings.flap_window,
                settings.card_refresh,
                escalation=self.escalation,
                rca_json=self._rca_json,
            ),
            clear=lambda incident_id: self.interactions.execute(
                incident_id, Command(CommandKind.CLEAR, actor="bot", surface="push")
            ),
            on_ingested=self._ingested,
            redact=self.redactor.redact,
            registry=self.metrics.registry,
            rules=self.rules,
        )
        self.chores = Chores(
            self.engine,
            self.fenced_engine,
            self.interactions,
            self.escalation,
            self.clock,
            settings,
            self.event_store,
            self.runner,
            next_runs=lambda: self.scheduler.next_runs(),
            wake=lambda: self.outbox.wake(),
        )
        self.scheduler = Scheduler(
            self.runner,
            settings.schedule_jitter,
            chores=[*self.chores.schedule(), *self.playbooks.chores, *self.push.chores],
        )
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
        if self.push.receiver is not None:  # a step under way finishes; the rest waits
            await self.push.receiver.aclose()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.playbooks.stop()  # runs cut short here become interrupted on the next leader
        if self.db.ready:
            with contextlib.suppress(Exception):  # the next holder takes over at once
                await self.replica.leave(self.clock.now())
        self.lease.drop()
        self.replica.leader = False
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
        await self.replica.lead(self._stop, self.clock, self._lead, self.scheduler.pause)

    @property
    def leader(self) -> bool:
        """This replica runs the schedules (it holds a scheduler lease it still trusts)."""
        return self.replica.leader

    def _lead(self) -> None:
        """This replica took the scheduler lease: it runs the schedules from now on."""
        assert self._stop is not None
        self.runner.forget_state()
        log.info(
            "this replica now runs the schedules (%s, generation %d)",
            self.holder,
            self.lease.lease.generation if self.lease.lease else 0,
        )
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

    def _analysed(self, incident_id: int) -> None:
        """After an incident's analysis: an automatic run, when its rule or playbook allows."""
        task = asyncio.get_running_loop().create_task(
            self.playbooks.after_analysis(incident_id), name=f"auto-{incident_id}"
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _auto_possible(self) -> bool:
        """Some rule or playbook may run a playbook by itself."""
        return any(r.auto_resolve for r in self.rules) or any(
            p.auto for p in self.playbooks.registry.all()
        )

    def _policy_for(self, rule: Rule) -> IngestPolicy:
        return IngestPolicy(
            router=self.router,
            flap_window=self.settings.flap_window,
            card_refresh=self.settings.card_refresh,
            realert=rule.realert,
            escalation=self.escalation,
            rca_json=self._rca_json,
        )

    def _ingested(self, result: IngestResult) -> None:
        auto = self._rca_json is not None and result.new_or_reopened and self._auto_possible()
        for incident_id in result.new_or_reopened:
            if self._rca_json is None:
                self.enricher.submit([incident_id], severity_rank=result.ranks.get(incident_id, 2))
            elif auto:  # no analysis to wait for: the automatic run's turn
                self._analysed(incident_id)
        if result.messages:
            self.outbox.wake()
        for incident_id in result.updated:
            self.broadcaster.publish(Change(incident_id, "update"))

    def _changed(self) -> None:
        self.outbox.wake()

    # what the server mounts and asks -----------------------------------------------------------

    def webhook_routers(self) -> list[Any]:
        """HTTP routes of the integrations that receive calls (mounted by the server)."""
        routers: list[Any] = self.chat.routers()
        if self.pagerduty is not None and self.pagerduty.webhook_secrets:
            from integrations.pagerduty import webhook_router

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

    async def readiness(self) -> dict[str, Any]:
        """Each dependency's status and reason; a failing one says since when (bot.readiness)."""
        return await readiness_report(self)
