"""Root-cause reports: what an RcaEngine answers, every statement tied to evidence ids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class RcaStatus(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


@dataclass(frozen=True, slots=True)
class Cause:
    text: str
    evidence_ids: tuple[str, ...]
    confidence: float


@dataclass(frozen=True, slots=True)
class RcaReport:
    status: RcaStatus
    summary: str
    causes: tuple[Cause, ...] = ()
    recommendations: tuple[str, ...] = ()
    templates: tuple[tuple[str, int], ...] = ()  # (log template, occurrences)
    related: tuple[str, ...] = ()  # human ids of co-firing incidents
    confidence: float = 0.0
    engine: str = ""
    suggested_playbook: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)  # for the audit chain
