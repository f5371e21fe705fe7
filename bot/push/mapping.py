"""From a pushed alert (a label set, annotations, a time range) to the pipeline's :class:`Alert`.

A pushed alert's identity is its whole label set (as in Alertmanager; its record is the
``push_alerts`` row); the incident it joins is chosen by its route's ``group_by`` labels. The
pipeline gets one alert per group and push, so its cost follows the groups, not the alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.hits import Alert, Category, Evidence, Severity, fingerprint
from bot.push.config import ALL_LABELS, PushRoute
from bot.push.matchers import LabelMatcher, matches_all

_SEVERITY = {
    **{s.value: s for s in Severity},
    "page": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
    "disaster": Severity.CRITICAL,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "warn": Severity.MEDIUM,
    "average": Severity.MEDIUM,
    "minor": Severity.LOW,
    "none": Severity.INFO,
    "informational": Severity.INFO,
    "information": Severity.INFO,
    "debug": Severity.INFO,
}
_CATEGORY = {c.value: c for c in Category}

Labels = tuple[tuple[str, str], ...]
#: evidence lines one push brings to one group
EVIDENCE_LINES = 20


@dataclass(frozen=True, slots=True)
class PushedAlert:
    """One alert as a sender pushed it, already validated; ``ends_at`` is always set (a
    missing one becomes ``now + resolve_timeout`` with ``timeout`` true)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    generator_url: str = ""
    timeout: bool = False

    def resolved(self, now: datetime) -> bool:
        return self.ends_at <= now


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: PushRoute
    matchers: tuple[LabelMatcher, ...]
    group_all: bool = field(default=False)

    @classmethod
    def of(cls, route: PushRoute) -> CompiledRoute:
        return cls(route, route.parsed(), ALL_LABELS in route.group_by)

    def grouping(self, labels: Mapping[str, str]) -> Labels:
        if self.group_all:
            return tuple(sorted(labels.items()))
        return tuple((name, labels.get(name, "")) for name in self.route.group_by)


def route_for(routes: Sequence[CompiledRoute], labels: Mapping[str, str]) -> CompiledRoute:
    for route in routes:
        if matches_all(route.matchers, labels):
            return route
    return routes[-1]  # the default route matches everything


def label_set(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def alert_fingerprint(route: CompiledRoute, labels: Labels) -> str:
    return fingerprint(route.route.rule_id, labels)


def severity_of(labels: Mapping[str, str], default: Severity) -> Severity:
    return _SEVERITY.get(labels.get("severity", "").strip().lower(), default)


def to_alert(
    route: CompiledRoute,
    grouping: Labels,
    members: Sequence[tuple[PushedAlert, Labels, bool]],
    now: datetime,
    redact: Callable[[str], str],
    lines: int = EVIDENCE_LINES,
) -> Alert:
    """One pipeline alert for one group's firing pushed alerts (``(alert, label set, new)``;
    ``new`` when it (re)fires with this push). New ones count one event each and bring one
    evidence line each (at most ``lines``); a push that only refreshes counts none.
    The most severe member names the incident; its labels are what silences match."""
    rule = route.route
    head, head_rank = members[0][0], 99
    for pushed, _, _ in members:
        rank = severity_of(pushed.labels, rule.severity).rank
        if rank < head_rank:
            head, head_rank = pushed, rank
    tags, notes = head.labels, head.annotations
    name = tags.get("alertname", "alert")
    summary = notes.get("summary") or notes.get("message") or ""
    where = ", ".join(f"{k}={v}" for k, v in grouping if k != "alertname" and v)
    title = f"{name}: {summary}" if summary else (f"{name} ({where})" if where else name)
    evidence: list[Evidence] = []
    new = 0
    for pushed, labels, fresh in members:
        if not fresh:
            continue
        new += 1
        if len(evidence) < lines:
            text = " ".join(f"{k}={v}" for k, v in labels)
            detail = pushed.annotations.get("description") or pushed.annotations.get("summary")
            line = redact(f"{text}: {detail}" if detail else text)
            evidence.append(
                Evidence(f"am-{fingerprint(rule.rule_id, labels)}", pushed.starts_at, line)
            )
    return Alert(
        rule_id=rule.rule_id,
        group=grouping,
        title=redact(title),
        severity=severity_of(tags, rule.severity),
        category=_CATEGORY.get(tags.get("category", "").lower(), rule.category),
        service=tags.get("service") or tags.get("job", ""),
        host=tags.get("instance") or tags.get("host", ""),
        owner=tags.get("team") or tags.get("owner", ""),
        first_seen=min(min(p.starts_at for p, _, _ in members), now),
        last_seen=now,
        new_events=new,
        value=float(len(members)),
        evidence=tuple(evidence),
        runbook=notes.get("runbook_url", ""),
        events=new,
        search_link=head.generator_url,
        labels=dict(tags),
    )
