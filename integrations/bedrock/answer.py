"""What the model must answer, how an answer is refused, and how its confidence is calibrated.

An answer is one JSON object (a single ```json fence around it is tolerated, nothing else) that
validates against :class:`Answer`. It is refused (:class:`Rejected`, with a reason) when it does
not parse or validate, cites an evidence id that is not in the pack, names a playbook that is
not in the registry, or suggests a playbook the evidence does not support.

*Supported* means: at least one cause cites an evidence line that is in the pack and is not
suspect. A line is suspect when it names the suggested playbook or reads like instructions to
a model ("ignore previous instructions", "run playbook", "system prompt", ...). A log line
asking for a playbook is exactly what an attacker can write, so it never counts as evidence
for running one; a real symptom ("connection pool exhausted") does.

Calibration: the confidence shown is the model's ``overall_confidence`` capped by the evidence
coverage (the share of causes citing at least one line); a cause citing nothing shows 0. When
the model says ``insufficient_evidence`` or no cause cites anything, the report says
"insufficient evidence" (status ``insufficient_evidence``, confidence 0, no playbook) instead of
guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.domain.rca import Cause, RcaReport, RcaStatus
from integrations.bedrock.evidence import EvidencePack, one_line

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class RejectReason(StrEnum):
    UNPARSEABLE = "unparseable"  # not one JSON object
    INVALID = "invalid"  # JSON, but not the schema
    UNKNOWN_EVIDENCE = "unknown_evidence"  # cites an id that is not in the pack
    UNKNOWN_PLAYBOOK = "unknown_playbook"  # names a playbook not in the registry
    UNSUPPORTED_PLAYBOOK = "unsupported_playbook"  # suggests one the evidence does not support
    INCOMPLETE = "incomplete"  # the model stopped early (token limit, content filter)


class Rejected(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class CauseAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    cause: Text
    evidence_ids: list[str] = Field(max_length=50)
    confidence: Unit


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    probable_causes: list[CauseAnswer] = Field(max_length=10)
    recommended_actions: list[Text] = Field(max_length=10)
    suggested_playbook: str | None
    overall_confidence: Unit
    insufficient_evidence: bool


_FENCE = re.compile(r"\A```json[ \t]*\n(?P<body>.*)\n[ \t]*```\Z", re.DOTALL | re.IGNORECASE)
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompt|rules)\b"
    r"|\b(?:system|developer) prompt\b|\byou are now\b|\bnew instructions?\b"
    r"|\b(?:run|execute|trigger|start|invoke)\b.{0,20}\bplaybook\b|</?evidence",
    re.IGNORECASE,
)


def parse_answer(text: str) -> Answer:
    """The answer in ``text``; raises :class:`Rejected` (unparseable or invalid)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced["body"].strip()
    if not body.startswith("{"):
        raise Rejected(RejectReason.UNPARSEABLE, "the answer is not a JSON object")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise Rejected(RejectReason.UNPARSEABLE, f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise Rejected(RejectReason.UNPARSEABLE, "the answer is not a JSON object")
    try:
        return Answer.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise Rejected(RejectReason.INVALID, f"{where}: {first['msg']}") from None


def _ids(cause: CauseAnswer) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i.strip().strip("[]").strip() for i in cause.evidence_ids))


def suspect(line: str, playbook: str) -> bool:
    """Whether ``line`` names ``playbook`` or reads like instructions to a model."""
    return playbook.lower() in line.lower() or _INSTRUCTION.search(line) is not None


def check_answer(answer: Answer, pack: EvidencePack, playbooks: Collection[str]) -> None:
    """Raise :class:`Rejected` unless every citation and the playbook suggestion hold up."""
    for cause in answer.probable_causes:
        unknown = [i for i in _ids(cause) if i not in pack.lines]
        if unknown:
            shown = ", ".join(repr(i[:40]) for i in unknown[:3])
            raise Rejected(RejectReason.UNKNOWN_EVIDENCE, f"cites {shown}, not in the evidence")
    name = answer.suggested_playbook
    if name is None:
        return
    if name not in playbooks:
        raise Rejected(RejectReason.UNKNOWN_PLAYBOOK, f"suggests {name[:60]!r}, not a playbook")
    backing = [
        i
        for cause in answer.probable_causes
        for i in _ids(cause)
        if not suspect(pack.lines[i], name)
    ]
    if not backing:
        raise Rejected(
            RejectReason.UNSUPPORTED_PLAYBOOK,
            f"suggests {name!r} with no evidence line of its own backing it",
        )


@dataclass(frozen=True, slots=True)
class Calibrated:
    status: RcaStatus
    confidence: float
    coverage: float
    causes: tuple[Cause, ...]


def calibrate(answer: Answer) -> Calibrated:
    """Cap the model's confidence by evidence coverage; no coverage means insufficient."""
    found = []
    for cause in answer.probable_causes:
        ids = _ids(cause)
        found.append(Cause(one_line(cause.cause), ids, round(cause.confidence, 2) if ids else 0.0))
    causes = tuple(found)
    cited = sum(1 for c in causes if c.evidence_ids)
    coverage = cited / len(causes) if causes else 0.0
    if answer.insufficient_evidence or cited == 0:
        return Calibrated(RcaStatus.INSUFFICIENT_EVIDENCE, 0.0, round(coverage, 2), causes)
    confidence = round(min(answer.overall_confidence, coverage), 2)
    return Calibrated(RcaStatus.OK, confidence, round(coverage, 2), causes)


def to_report(
    answer: Answer, pack: EvidencePack, engine: str, playbooks: Collection[str]
) -> RcaReport:
    """The report for a checked answer (``check_answer`` first: this one trusts it)."""
    calibrated = calibrate(answer)
    ok = calibrated.status is RcaStatus.OK
    playbook = answer.suggested_playbook if ok and answer.suggested_playbook in playbooks else None
    return RcaReport(
        status=calibrated.status,
        summary=one_line(answer.summary),
        causes=calibrated.causes,
        recommendations=tuple(dict.fromkeys(one_line(a) for a in answer.recommended_actions)),
        templates=pack.templates,
        related=pack.related,
        confidence=calibrated.confidence,
        engine=engine,
        suggested_playbook=playbook,
    )


def answer_json(answer: Answer) -> str:
    return answer.model_dump_json()


def describe(reason: RejectReason) -> str:
    """How a refusal reads on the card and in the timeline."""
    return _DESCRIPTIONS[reason]


_DESCRIPTIONS: Mapping[RejectReason, str] = {
    RejectReason.UNPARSEABLE: "its answer was not a JSON object",
    RejectReason.INVALID: "its answer did not match the expected fields",
    RejectReason.UNKNOWN_EVIDENCE: "it cited evidence that does not exist",
    RejectReason.UNKNOWN_PLAYBOOK: "it named a playbook that does not exist",
    RejectReason.UNSUPPORTED_PLAYBOOK: "it suggested a playbook the evidence does not support",
    RejectReason.INCOMPLETE: "its answer was cut off",
}

__all__ = [
    "Answer",
    "Calibrated",
    "CauseAnswer",
    "RejectReason",
    "Rejected",
    "answer_json",
    "calibrate",
    "check_answer",
    "describe",
    "parse_answer",
    "suspect",
    "to_report",
]
