"""Push ingest's parts for the composition root: its HTTP routers and its expiry chore."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine

from bot.pipeline.ingest import IngestPolicy, IngestResult
from bot.ports import Clock
from bot.push.auth import PushMetrics, SenderGate
from bot.push.config import PushSettings
from bot.push.receiver import PushReceiver
from detectors.model import Rule
from integrations.alertmanager.api import alerts_router
from integrations.splunk.webhook import splunk_router

EXPIRE_EVERY = timedelta(seconds=15)


@dataclass(frozen=True, slots=True)
class PushParts:
    receiver: PushReceiver | None = None
    routers: tuple[APIRouter, ...] = ()
    chores: list[tuple[str, timedelta, Callable[[], Awaitable[Any]]]] = field(default_factory=list)


def from_settings(
    settings: PushSettings,
    *,
    engine: Engine,
    clock: Clock,
    policy: IngestPolicy,
    clear: Callable[[int], Awaitable[object]],
    on_ingested: Callable[[IngestResult], None],
    redact: Callable[[str], str],
    registry: CollectorRegistry,
    rules: Sequence[Rule],
) -> PushParts:
    """Nothing when no sender is configured (the endpoints then do not exist)."""
    if not settings.enabled:
        return PushParts()
    receiver = PushReceiver(engine, clock, settings, policy, clear, on_ingested, redact)
    gate = SenderGate(settings.senders, PushMetrics(registry))
    _backlog_gauges(receiver, registry)
    return PushParts(
        receiver,
        (
            alerts_router(receiver, gate, clock.now()),
            splunk_router(receiver, gate, rules, settings.splunk_rules),
        ),
        [("push-expire", EXPIRE_EVERY, receiver.expire)],
    )


def _backlog_gauges(receiver: PushReceiver, registry: CollectorRegistry) -> None:
    """Pushes answered but not applied yet: how many alerts, and how long the oldest waits."""
    waiting = Gauge(
        "bot_push_journal_alerts",
        "Pushed alerts answered and waiting in the push journal to be applied",
        registry=registry,
    )
    oldest = Gauge(
        "bot_push_journal_oldest_seconds",
        "How long the oldest pushed alert not applied yet has waited",
        registry=registry,
    )

    def read(index: int) -> float:
        if not receiver.journal_ready:
            return 0.0
        try:
            return float(receiver.journal.backlog(receiver.clock.now())[index])
        except Exception:  # the database is away: /ready says so; the gauge reads nothing
            return float("nan")

    waiting.set_function(lambda: read(0))
    oldest.set_function(lambda: read(1))
