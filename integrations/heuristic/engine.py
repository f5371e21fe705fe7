"""An RCA engine that needs no model: log templates, co-firing incidents and known patterns.

Everything it says is read off the evidence: each cause cites the ids of the lines that support
it, confidence grows with the share of lines that do, and when nothing supports a cause the
report says so (``insufficient_evidence``) instead of guessing. Same input, same report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.hits import Evidence
from bot.domain.incident import Incident
from bot.domain.rca import Cause, RcaReport, RcaStatus
from bot.ports import RcaContext
from integrations.heuristic.patterns import PATTERNS, KnownPattern, PatternMatch, metric_readings
from integrations.heuristic.templates import top_templates

logger = logging.getLogger(__name__)

ENGINE_NAME = "heuristic"
MAX_CITED = 10
"""At most this many evidence ids are cited per cause."""


def pattern_confidence(share: float) -> float:
    """0.4 for a single supporting line, growing with the share of lines, capped at 0.9."""
    return round(min(0.9, 0.4 + 0.5 * share), 2)


def related_confidence(share: float) -> float:
    """Co-firing is correlation, not proof: 0.3 plus up to 0.3 for overlapping lines."""
    return round(min(0.6, 0.3 + 0.3 * share), 2)


@dataclass(frozen=True, slots=True)
class _Finding:
    title: str  # short name, listed under "Also seen"
    headline: str  # how the summary introduces it when it is the top cause
    cause: Cause
    recommendations: tuple[str, ...]
    lines: tuple[Evidence, ...] = ()  # the lines a known pattern matched (none for co-firing)


def _cite(lines: Sequence[Evidence]) -> tuple[str, ...]:
    ids: list[str] = []
    for line in lines:
        if line.id not in ids:
            ids.append(line.id)
            if len(ids) == MAX_CITED:
                break
    return tuple(ids)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} seconds"
    if seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    hours, minutes = divmod(seconds // 60, 60)
    text = f"{hours} hour" + ("s" if hours != 1 else "")
    return text + (f" {minutes} min" if minutes else "")


class HeuristicRcaEngine:
    """Implements :class:`bot.ports.RcaEngine` with rules only.

    ``overlap_slack`` widens a related incident's ``[first_seen, last_seen]`` window when looking
    for this incident's evidence inside it (clocks of different sources disagree a little).
    Evidence sets above ``inline_limit`` lines are analysed in a worker thread.

    ``suggestions`` maps a rule id to the playbook that fits its incidents (the rule's
    ``suggested_playbook``, or the registry's best match); ``playbooks`` are the registry's ids.
    A report suggests a playbook only when both name it and a known pattern backs the
    incident with at least one evidence line that does not itself mention a playbook: log text
    can ask for a playbook, but it never chooses one and never counts as its evidence.
    """

    def __init__(
        self,
        *,
        patterns: Sequence[KnownPattern] = PATTERNS,
        max_templates: int = 5,
        overlap_slack: timedelta = timedelta(minutes=1),
        inline_limit: int = 200,
        playbooks: Collection[str] = (),
        suggestions: Mapping[str, str] | None = None,
    ) -> None:
        known = frozenset(playbooks)
        self._suggestions = {
            rule: playbook for rule, playbook in (suggestions or {}).items() if playbook in known
        }
        self._patterns = tuple(patterns)
        self._max_templates = max_templates
        self._overlap_slack = overlap_slack
        self._inline_limit = inline_limit

    async def explain(
        self, incident: Incident, evidence: Sequence[Evidence], context: RcaContext
    ) -> RcaReport:
        if len(evidence) > self._inline_limit:
            return await asyncio.to_thread(self.analyse, incident, evidence, context)
        return self.analyse(incident, evidence, context)

    def analyse(
        self, incident: Incident, evidence: Sequence[Evidence], context: RcaContext
    ) -> RcaReport:
        """The report, computed synchronously (``explain`` is the async entry point)."""
        evidence = tuple(evidence)
        related = tuple(r for r in context.related if r.id != incident.id)
        related_ids = tuple(dict.fromkeys(r.human_id for r in related))
        templates = top_templates((e.text for e in evidence), self._max_templates)

        findings = [
            *self._match_patterns(evidence, incident.hit_count),
            *self._co_firing(incident, evidence, related),
        ]
        # most confident first; equal confidence keeps table order (patterns, then related)
        findings.sort(key=lambda f: -f.cause.confidence)
        if not findings:
            return RcaReport(
                status=RcaStatus.INSUFFICIENT_EVIDENCE,
                summary=self._insufficient(evidence, related, templates),
                templates=templates,
                related=related_ids,
                engine=ENGINE_NAME,
            )

        recommendations = tuple(
            dict.fromkeys(rec for finding in findings for rec in finding.recommendations)
        )
        top = findings[0]
        summary = f"{top.headline}: {_sentence(top.cause.text)}"
        if len(findings) > 1:
            summary += " Also seen: " + ", ".join(f.title for f in findings[1:]) + "."
        report = RcaReport(
            status=RcaStatus.OK,
            summary=summary,
            causes=tuple(f.cause for f in findings),
            recommendations=recommendations,
            templates=templates,
            related=related_ids,
            confidence=top.cause.confidence,
            engine=ENGINE_NAME,
            suggested_playbook=self._suggestion(incident.rule_id, top),
        )
        logger.debug(
            "rca for %s: %d causes, top %r (%.2f)",
            incident.human_id,
            len(findings),
            top.title,
            top.cause.confidence,
        )
        return report

    def _suggestion(self, rule_id: str, top: _Finding) -> str | None:
        """The rule's playbook, when the top cause is a known pattern that lines of the
        incident's own back (a line mentioning a playbook backs nothing)."""
        playbook = self._suggestions.get(rule_id)
        if playbook is None:
            return None
        backing = [
            line
            for line in top.lines
            if "playbook" not in line.text.lower() and playbook not in line.text.lower()
        ]
        return playbook if backing else None

    # --- known patterns ------------------------------------------------------------------------

    def _match_patterns(self, evidence: tuple[Evidence, ...], events: int = 0) -> list[_Finding]:
        if not evidence:
            return []
        readings = [metric_readings(e.text) for e in evidence]
        findings: list[_Finding] = []
        for pattern in self._patterns:
            by_signal: dict[str, list[Evidence]] = {}
            lines: list[Evidence] = []
            for line, line_readings in zip(evidence, readings, strict=True):
                hit = False
                for signal in pattern.signals:
                    if signal.matches(line.text, line_readings):
                        by_signal.setdefault(signal.name, []).append(line)
                        hit = True
                if hit:
                    lines.append(line)
            if len(lines) < pattern.min_lines or not pattern.required <= by_signal.keys():
                continue
            match = PatternMatch(
                lines=tuple(lines),
                by_signal={name: tuple(found) for name, found in by_signal.items()},
                total_lines=len(evidence),
            )
            share = len(lines) / len(evidence)
            described = pattern.describe(match).strip().rstrip(".")
            sampled = f" sampled from {events} events" if events > len(evidence) else ""
            text = f"{described} ({len(lines)} of {len(evidence)} evidence lines{sampled})."
            findings.append(
                _Finding(
                    pattern.title,
                    f"Most likely {pattern.title}",
                    Cause(text, _cite(lines), pattern_confidence(share)),
                    pattern.recommendations,
                    tuple(lines),
                )
            )
        return findings

    # --- co-firing incidents -------------------------------------------------------------------

    def _co_firing(
        self,
        incident: Incident,
        evidence: tuple[Evidence, ...],
        related: tuple[Incident, ...],
    ) -> list[_Finding]:
        findings: list[_Finding] = []
        if not evidence:
            return findings
        ordered = sorted(related, key=lambda r: (r.first_seen, r.id))
        for other in ordered:
            start = other.first_seen - self._overlap_slack
            end = other.last_seen + self._overlap_slack
            overlapping = [e for e in evidence if start <= e.time <= end]
            if not overlapping:
                continue
            if other.host and other.host == incident.host:
                where = f"on the same host ({other.host})"
            elif other.service and other.service == incident.service:
                where = f"on the same service ({other.service})"
            else:
                where = "in the same window"
            lead = incident.first_seen - other.first_seen
            if abs(lead) < timedelta(minutes=1):
                when = "at about the same time"
            elif lead > timedelta(0):
                when = f"{_duration(lead)} earlier"
            else:
                when = f"{_duration(lead)} later"
            text = (
                f"{other.human_id} ({other.title}) fired {where} {when}; "
                f"{len(overlapping)} of {len(evidence)} evidence lines of this incident fall "
                "within its active window."
            )
            share = len(overlapping) / len(evidence)
            recommendation = (
                f"Look at {other.human_id} ({other.title}) first: it started earlier {where}."
                if lead >= timedelta(minutes=1)
                else f"Check whether {other.human_id} ({other.title}) shares a cause with this."
            )
            findings.append(
                _Finding(
                    f"co-firing {other.human_id}",
                    f"Possibly related to {other.human_id}",
                    Cause(text, _cite(overlapping), related_confidence(share)),
                    (recommendation,),
                )
            )
        return findings

    # --- nothing found -------------------------------------------------------------------------

    def _insufficient(
        self,
        evidence: tuple[Evidence, ...],
        related: tuple[Incident, ...],
        templates: tuple[tuple[str, int], ...],
    ) -> str:
        if not evidence:
            looked = "there are no evidence lines to analyse"
            if related:
                looked += f" ({_plural(len(related), 'related incident')} cannot be tied to any)"
            return f"Insufficient evidence: {looked}."
        names = ", ".join(p.title for p in self._patterns)
        parts = [f"checked {len(evidence)} evidence lines against known patterns ({names})"]
        if templates:
            template, count = templates[0]
            parts.append(f"the most common line is {template!r} ({count})")
        if related:
            parts.append(
                f"{_plural(len(related), 'related incident')} with no overlapping evidence"
            )
        return "Insufficient evidence: " + "; ".join(parts) + "; none of it supports a cause."


__all__ = ["ENGINE_NAME", "MAX_CITED", "HeuristicRcaEngine"]
