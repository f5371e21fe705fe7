"""Root-cause analysis for the composition root: the engine ``BOT_RCA`` names and how long an
analysis may take. Each engine is imported only when ``BOT_RCA`` names it (Bedrock's brings
boto3)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeGuard

from bot.domain.rca import RcaReport, RcaStatus
from bot.health import Readiness
from bot.ports import Health, HealthStatus, RcaEngine, SearchBackend
from bot.redaction import Redactor
from bot.settings import Settings
from bot.store.cards import rca_to_json
from playbooks.registry import Registry

if TYPE_CHECKING:
    from integrations.bedrock import BedrockRcaEngine
    from integrations.heuristic import HeuristicRcaEngine
    from integrations.splunk import SplunkSearchBackend


OFF = RcaReport(RcaStatus.UNAVAILABLE, "root-cause analysis is turned off (BOT_RCA=off)")


class OffRca:
    """``BOT_RCA=off``: every analysis says so."""

    async def explain(self, incident: Any, evidence: Any, context: Any) -> RcaReport:
        return OFF


def initial_rca(rca: RcaEngine) -> str | None:
    """What a new incident's root cause says from the start: with ``BOT_RCA=off`` that it is
    off (no analysis is queued, written or re-posted for it); otherwise None (pending)."""
    return rca_to_json(OFF) if isinstance(rca, OffRca) else None


def heuristic(registry: Registry) -> HeuristicRcaEngine:
    """The heuristic engine, suggesting the playbooks loaded."""
    from integrations.heuristic import HeuristicRcaEngine

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
        from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings

        bedrock = load_bedrock_settings()
        engine = BedrockRcaEngine(bedrock, heuristic(registry), redactor, playbooks=registry.ids())
        # a late Bedrock answer still leaves time for the heuristic fallback
        return engine, max(timeout, bedrock.timeout + timedelta(seconds=5))
    if settings.rca == "heuristic":
        return heuristic(registry), timeout
    return OffRca(), timeout


def _loaded(module: str, name: str) -> type | None:
    """The class ``module.name`` when ``module`` was imported (nothing is an instance of a class
    never imported: asking does not import it)."""
    found = sys.modules.get(module)
    return getattr(found, name) if found is not None else None


def _is_splunk(backend: SearchBackend) -> TypeGuard[SplunkSearchBackend]:
    cls = _loaded("integrations.splunk.backend", "SplunkSearchBackend")
    return cls is not None and isinstance(backend, cls)


def _is_bedrock(rca: RcaEngine) -> TypeGuard[BedrockRcaEngine]:
    cls = _loaded("integrations.bedrock.engine", "BedrockRcaEngine")
    return cls is not None and isinstance(rca, cls)


def report_calls(health: Readiness, backend: SearchBackend, rca: RcaEngine) -> None:
    """Searches and Bedrock analyses report each outcome to /ready as they happen."""
    if _is_splunk(backend):
        backend.on_health = health.hook("search", checked=True)
    if _is_bedrock(rca):
        rca.on_health = health.hook("rca:bedrock")
        health.observe("rca:bedrock", Health(HealthStatus.OK, "no analysis asked yet"))
