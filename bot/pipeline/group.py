"""Group: fold one run's alerts by group key, and merge a repeated alert into its record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.hits import Alert, Evidence

EVIDENCE_CAP = 50


@dataclass(frozen=True, slots=True)
class GroupBatch:
    """The alerts of one run that share a group key (usually one per key)."""

    key: str
    alerts: tuple[Alert, ...]

    @property
    def head(self) -> Alert:
        """The most severe alert: it names the incident."""
        return min(self.alerts, key=lambda a: a.severity.rank)

    @property
    def new_events(self) -> int:
        return sum(a.new_events for a in self.alerts)

    @property
    def events(self) -> int:
        """Matching events in the window: what a new incident starts its count with."""
        return max(self.new_events, sum(a.events for a in self.alerts))

    @property
    def first_seen(self) -> datetime:
        return min(a.first_seen for a in self.alerts)

    @property
    def last_seen(self) -> datetime:
        return max(a.last_seen for a in self.alerts)


def fold(alerts: Iterable[Alert]) -> list[GroupBatch]:
    """Merge alerts with the same fingerprint, then gather them by group key (stable order)."""
    by_fp: dict[str, Alert] = {}
    for alert in alerts:
        fp = alert.fingerprint
        seen = by_fp.get(fp)
        by_fp[fp] = alert if seen is None else merge_alerts(seen, alert)
    by_key: dict[str, list[Alert]] = {}
    for alert in by_fp.values():
        by_key.setdefault(alert.group_key, []).append(alert)
    return [GroupBatch(k, tuple(v)) for k, v in by_key.items()]


def merge_alerts(a: Alert, b: Alert) -> Alert:
    return replace(
        a,
        first_seen=min(a.first_seen, b.first_seen),
        last_seen=max(a.last_seen, b.last_seen),
        new_events=a.new_events + b.new_events,
        events=a.events + b.events,
        value=b.value,
        evidence=merge_evidence(a.evidence, b.evidence),
    )


def merge_evidence(
    old: Sequence[Evidence], new: Sequence[Evidence], cap: int = EVIDENCE_CAP
) -> tuple[Evidence, ...]:
    """Newest evidence first, each line once, at most ``cap`` lines."""
    seen: dict[str, Evidence] = {}
    for item in (*new, *old):
        seen.setdefault(item.id, item)
    return tuple(sorted(seen.values(), key=lambda e: e.time, reverse=True)[:cap])
