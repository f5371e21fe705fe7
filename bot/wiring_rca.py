"""Root-cause analysis for the composition root: the engine ``BOT_RCA`` names and how long an
analysis may take."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.domain.rca import RcaReport, RcaStatus
from bot.health import Readiness
from bot.ports import Health, HealthStatus, RcaEngine, SearchBackend
from bot.redaction import Redactor
from bot.settings import Settings
from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings
from integrations.heuristic import HeuristicRcaEngine
from integrations.splunk import SplunkSearchBackend
from playbooks.registry import Registry


class OffRca:
    """``BOT_RCA=off``: every analysis says so."""

    async def explain(self, incident: Any, evidence: Any, context: Any) -> RcaReport:
        return RcaReport(RcaStatus.UNAVAILABLE, "root-cause analysis is turned off (BOT_RCA=off)")


def heuristic(registry: Registry) -> HeuristicRcaEngine:
    """The heuristic engine, suggesting the playbooks loaded."""
    return HeuristicRcaEngine(playbooks=registry.ids(), suggestions=registry.suggestions())


def from_settings(
    settings: Settings,
    *,
    registry: Registry,
    redactor: Redactor,
    rca: RcaEngine | None = None,
) -> tuple[RcaEngine, timedelta]:
    """The engine (``rca`` stands in for the configured one) and the analysis deadline."""
    timeout = settings.rca_timeout
    if rca is not None:
        return rca, timeout
    if settings.rca == "bedrock":
        bedrock = load_bedrock_settings()
        engine = BedrockRcaEngine(bedrock, heuristic(registry), redactor, playbooks=registry.ids())
        # a late Bedrock answer still leaves time for the heuristic fallback
        return engine, max(timeout, bedrock.timeout + timedelta(seconds=5))
    if settings.rca == "heuristic":
        return heuristic(registry), timeout
    return OffRca(), timeout


def report_calls(health: Readiness, backend: SearchBackend, rca: RcaEngine) -> None:
    """Searches and Bedrock analyses report each outcome to /ready as they happen."""
    if isinstance(backend, SplunkSearchBackend):
        backend.on_health = health.hook("search", checked=True)
    if isinstance(rca, BedrockRcaEngine):
        rca.on_health = health.hook("rca:bedrock")
        health.observe("rca:bedrock", Health(HealthStatus.OK, "no analysis asked yet"))
