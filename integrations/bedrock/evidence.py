"""The evidence pack: everything the model may read about one incident, redacted and bounded.

Sections, in this order: the incident (rule, title, query, window, counts, first and last seen,
severity, service, host), the top log templates with their counts, the evidence lines with
their ids (oldest first), the co-firing incidents and the recent timeline. Every piece of text
passes through the configured :class:`~bot.redaction.Redactor` again here, whatever was done
to it before, because this is the last stop before it leaves the network.

Size: about four characters make a token. When the pack is over its budget, lines are dropped
from the largest trimmable section first (evidence keeps its oldest lines, the timeline its
newest), one whole line at a time, and the section says how many it left out. A line is never
cut to fit the budget; a single line longer than :data:`LINE_CHARS` is shortened on its own,
with a marker saying so, before any budgeting. Pure: same input, same pack.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.durations import format_duration
from bot.domain.hits import Evidence
from bot.domain.incident import Incident
from bot.redaction import Redactor
from integrations.heuristic.templates import top_templates

CHARS_PER_TOKEN = 4
LINE_CHARS = 1000
"""A longer line keeps its first LINE_CHARS characters and says how many it lost."""
MAX_TEMPLATES = 5
MAX_RELATED = 10
MAX_TIMELINE = 20

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def evidence_key(evidence: Iterable[Evidence]) -> str:
    """A digest of the evidence ids: the same lines (in any order) give the same key."""
    ids = "\x00".join(sorted({e.id for e in evidence}))
    return hashlib.sha256(ids.encode()).hexdigest()[:32]


def one_line(text: str) -> str:
    """``text`` on one line: newlines, tabs and other control characters become one space."""
    return _CONTROL.sub(" ", text).strip()


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at.utcoffset() == timedelta(0) else at.isoformat()


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    heading: str
    lines: tuple[str, ...]
    trim_from_start: bool = False  # which end loses lines first
    empty: str = "(none)"


@dataclass(frozen=True, slots=True)
class EvidencePack:
    """The rendered pack and what the answer check needs to know about it."""

    text: str
    lines: Mapping[str, str]  # evidence id -> its text as sent, for every line in the pack
    templates: tuple[tuple[str, int], ...]
    related: tuple[str, ...]  # human ids of the co-firing incidents listed
    omitted: Mapping[str, int]  # section name -> lines left out to fit the budget
    tokens: int  # estimated size

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.lines)


class _Redact:
    """The redactor, plus one line and the length cap."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(self, text: str) -> str:
        text = self._redactor.redact(one_line(text))
        if len(text) > LINE_CHARS:
            lost = len(text) - LINE_CHARS
            text = f"{text[:LINE_CHARS]} [… {lost} more characters not shown]"
        return text


def build_pack(
    incident: Incident,
    evidence: Sequence[Evidence],
    redactor: Redactor,
    *,
    query: str = "",
    window: str = "",
    related: Sequence[Incident] = (),
    timeline: Sequence[str] = (),
    budget_tokens: int = 6000,
) -> EvidencePack:
    """The pack for ``incident``, redacted by ``redactor`` and at most ``budget_tokens`` big
    (unless the incident section alone is bigger)."""
    clean = _Redact(redactor)
    ordered = sorted({e.id: e for e in evidence}.values(), key=lambda e: (e.time, e.id))
    texts = {e.id: clean(e.text) for e in ordered}
    templates = top_templates(texts.values(), MAX_TEMPLATES)
    others = [r for r in related if r.id != incident.id][:MAX_RELATED]

    header = _header(incident, clean, query, window)
    sections = [
        _Section(
            "templates",
            "Top log templates (occurrences, template)",
            tuple(f"{count} | {clean(template)}" for template, count in templates),
        ),
        _Section(
            "evidence",
            "Evidence lines ([id] time text), oldest first",
            tuple(f"[{e.id}] {_stamp(e.time)} {texts[e.id]}" for e in ordered),
        ),
        _Section(
            "related",
            "Co-firing incidents (id | title | state)",
            tuple(f"{r.human_id} | {clean(r.title)} | {r.state.value}" for r in others),
        ),
        _Section(
            "timeline",
            "Recent timeline, oldest first",
            tuple(clean(line) for line in list(timeline)[-MAX_TIMELINE:]),
            trim_from_start=True,
        ),
    ]
    kept = {s.name: list(s.lines) for s in sections}
    budget = budget_tokens * CHARS_PER_TOKEN
    while True:
        text = _render(header, sections, kept)
        if len(text) <= budget:
            break
        candidates = [s for s in sections if kept[s.name]]
        if not candidates:
            break
        largest = max(candidates, key=lambda s: sum(len(line) + 1 for line in kept[s.name]))
        kept[largest.name].pop(0 if largest.trim_from_start else -1)

    in_pack = ordered[: len(kept["evidence"])]  # evidence only ever loses its newest lines
    return EvidencePack(
        text=text,
        lines={e.id: texts[e.id] for e in in_pack},
        templates=templates,
        related=tuple(dict.fromkeys(r.human_id for r in others)),
        omitted={s.name: len(s.lines) - len(kept[s.name]) for s in sections},
        tokens=estimate_tokens(text),
    )


def _header(incident: Incident, clean: _Redact, query: str, window: str) -> list[str]:
    """The incident's facts, each line redacted whole (so ``host: x`` is a host in strict mode)."""
    active = format_duration(max(incident.last_seen - incident.first_seen, timedelta(0)))
    lines = [
        f"rule: {incident.rule_id}",
        f"title: {incident.title}",
        f"severity: {incident.severity.value}",
        f"category: {incident.category.value}",
        f"service: {incident.service or '-'}",
        f"host: {incident.host or '-'}",
        f"state: {incident.state.value}",
        f"hits: {incident.hit_count}",
        f"alerts: {incident.alert_count}",
        f"first seen: {_stamp(incident.first_seen)}",
        f"last seen: {_stamp(incident.last_seen)}",
        f"active for: {active}",
    ]
    if window:
        lines.append(f"rule window: {window}")
    lines.append(f"query: {query or '-'}")
    return [clean(line) for line in lines]


def _render(header: list[str], sections: list[_Section], kept: Mapping[str, list[str]]) -> str:
    out = ["## Incident", *header]
    for section in sections:
        out.append("")
        out.append(f"## {section.heading}")
        lines = kept[section.name]
        left_out = len(section.lines) - len(lines)
        if left_out and section.trim_from_start:
            out.append(f"(… {left_out} earlier lines left out to fit the size budget)")
        out.extend(lines)
        if left_out and not section.trim_from_start:
            out.append(f"(… {left_out} more lines left out to fit the size budget)")
        if not section.lines:
            out.append(section.empty)
    return "\n".join(out)


__all__ = [
    "CHARS_PER_TOKEN",
    "LINE_CHARS",
    "EvidencePack",
    "build_pack",
    "estimate_tokens",
    "evidence_key",
    "one_line",
]
