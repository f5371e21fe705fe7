"""Push ingest's parts for the composition root: its HTTP routers and its expiry chore."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from prometheus_client import CollectorRegistry
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
    return PushParts(
        receiver,
        (
            alerts_router(receiver, gate, clock.now()),
            splunk_router(receiver, gate, rules, settings.splunk_rules),
        ),
        [("push-expire", EXPIRE_EVERY, receiver.expire)],
    )
