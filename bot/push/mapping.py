"""From a pushed alert (a label set, annotations, a time range) to the pipeline's :class:`Alert`.

A pushed alert's identity is its whole label set (as in Alertmanager); the incident it joins is
chosen by its route's ``group_by`` labels. :class:`PushAlert` carries both: ``group`` is the
label set (the fingerprint and the stored alert), ``grouping`` the group-by values (the key).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.hits import Alert, Category, Evidence, Severity, fingerprint, group_key
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
class PushAlert(Alert):
    """An :class:`Alert` whose group key comes from ``grouping``, not from its label set."""

    grouping: Labels = ()

    @property
    def group_key(self) -> str:
        return group_key(self.rule_id, self.grouping)


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
    pushed: PushedAlert,
    labels: Labels,
    now: datetime,
    new: bool,
    redact: Callable[[str], str],
) -> PushAlert:
    """The pipeline alert for one firing pushed alert; ``new`` when it (re)fires with this push
    (it then counts one event and brings one evidence line), false when a push refreshes it."""
    tags, notes = pushed.labels, pushed.annotations
    grouping = route.grouping(tags)
    name = tags.get("alertname", "alert")
    summary = notes.get("summary") or notes.get("message") or ""
    where = ", ".join(f"{k}={v}" for k, v in grouping if k != "alertname" and v)
    title = f"{name}: {summary}" if summary else (f"{name} ({where})" if where else name)
    evidence: tuple[Evidence, ...] = ()
    if new:
        text = " ".join(f"{k}={v}" for k, v in labels)
        detail = notes.get("description") or summary
        line = redact(f"{text}: {detail}" if detail else text)
        evidence = (Evidence(f"am-{alert_fingerprint(route, labels)}", pushed.starts_at, line),)
    rule = route.route
    return PushAlert(
        rule_id=rule.rule_id,
        group=labels,
        title=redact(title),
        severity=severity_of(tags, rule.severity),
        category=_CATEGORY.get(tags.get("category", "").lower(), rule.category),
        service=tags.get("service") or tags.get("job", ""),
        host=tags.get("instance") or tags.get("host", ""),
        owner=tags.get("team") or tags.get("owner", ""),
        first_seen=min(pushed.starts_at, now),
        last_seen=now,
        new_events=1 if new else 0,
        value=1.0,
        evidence=evidence,
        runbook=notes.get("runbook_url", ""),
        events=1,
        search_link=pushed.generator_url,
        grouping=grouping,
    )
