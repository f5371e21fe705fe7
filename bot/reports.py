"""What the incidents of a period say about the rules: ``run_bot.py report --since 7d``.

Per rule: how many incidents, the share resolved with no action (the condition cleared, or
resolved with no acknowledge, command or playbook run before it), suppressed (by a person or
muted by a silence, window or inhibition) and auto-resolved (resolved by ``playbook:*``). Per
service: time to acknowledge and to resolve (median and p90). The noisiest group keys. A
recommendation per noisy rule. Built from the incident rows and their audit entries; ``since``
and ``until`` are passed in (no wall clock here).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from bot.domain.durations import format_duration
from bot.postmortem import AUDIT, utc
from bot.store.repo import INCIDENTS

#: a rule with fewer incidents than this gets no recommendation (too little to judge)
NOISY_AT = 3
#: the share of incidents that makes a rule noisy
NO_ACTION_SHARE = 0.5
SUPPRESSED_SHARE = 0.5
AUTO_SHARE = 0.8
NOISIEST = 10
#: commands that are someone acting on the incident (a resolve itself is not)
ACTING = frozenset(
    {"acknowledge", "suppress", "assign", "comment", "escalate", "reanalyse", "unsuppress"}
)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Facts:
    """One incident's facts for the report."""

    rule: str
    service: str
    group_key: str
    resolved: bool
    no_action: bool
    suppressed: bool
    auto_resolved: bool
    to_acknowledge: float | None
    to_resolve: float | None


@dataclass(frozen=True, slots=True)
class RuleLine:
    rule: str
    incidents: int
    resolved: int
    no_action: int
    suppressed: int
    auto_resolved: int
    recommendation: str

    @property
    def no_action_share(self) -> float:
        return self.no_action / self.incidents if self.incidents else 0.0


@dataclass(frozen=True, slots=True)
class Spread:
    median: float | None
    p90: float | None
    count: int


@dataclass(frozen=True, slots=True)
class ServiceLine:
    service: str
    incidents: int
    to_acknowledge: Spread
    to_resolve: Spread


@dataclass(frozen=True, slots=True)
class KeyLine:
    group_key: str
    rule: str
    incidents: int


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    incidents: int
    rules: tuple[RuleLine, ...]
    services: tuple[ServiceLine, ...]
    noisiest: tuple[KeyLine, ...]


def spread(values: Sequence[float]) -> Spread:
    """Median and p90 (nearest rank) of ``values``; ``None`` when there are none."""
    if not values:
        return Spread(None, None, 0)
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return Spread(float(statistics.median(ordered)), float(p90), len(ordered))


def build(engine: Engine, since: datetime, until: datetime) -> Report:
    """The report of incidents first opened in ``[since, until)``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(INCIDENTS)
            .where(INCIDENTS.c.created_at >= since, INCIDENTS.c.created_at < until)
            .order_by(INCIDENTS.c.id)
        ).all()
        entries: dict[int, list[Any]] = defaultdict(list)
        ids = [r.id for r in rows]
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for e in conn.execute(
                select(
                    AUDIT.c.incident_id, AUDIT.c.at, AUDIT.c.actor, AUDIT.c.action, AUDIT.c.result
                )
                .where(AUDIT.c.incident_id.in_(chunk))
                .order_by(AUDIT.c.id)
            ):
                entries[e.incident_id].append(e)
    facts = [facts_of(r, entries[r.id]) for r in rows]
    return summarise(facts, since, until)


def facts_of(row: Any, entries: Iterable[Any]) -> Facts:
    first_seen = utc(row.first_seen)
    resolved = row.state == "resolved" and row.resolved_at is not None
    resolved_at = utc(row.resolved_at) if resolved else None
    applied = [e for e in entries if e.result == "applied"]
    acked = next((utc(e.at) for e in applied if e.action == "acknowledge"), None)
    ended = next((e for e in applied if e.action in ("resolve", "clear", "auto_resolve")), None)
    end_at = utc(ended.at) if ended is not None else resolved_at
    before_end = [e for e in applied if end_at is None or utc(e.at) <= end_at]
    acted = any(
        e.action in ACTING or e.action.startswith("playbook_") for e in before_end if e != ended
    )
    return Facts(
        rule=row.rule_id,
        service=row.service or "(none)",
        group_key=row.group_key,
        resolved=resolved,
        no_action=resolved and ((ended is not None and ended.action == "clear") or not acted),
        suppressed=row.muted_by is not None or any(e.action == "suppress" for e in applied),
        auto_resolved=resolved and row.state_changed_by.startswith("playbook:"),
        to_acknowledge=(acked - first_seen).total_seconds() if acked else None,
        to_resolve=(resolved_at - first_seen).total_seconds() if resolved_at else None,
    )


def recommend(line: RuleLine) -> str:
    if line.incidents < NOISY_AT:
        return ""
    share = line.no_action_share
    if share >= NO_ACTION_SHARE:
        return f"{share:.0%} resolved with no action: raise the threshold or set realert"
    suppressed = line.suppressed / line.incidents
    if suppressed >= SUPPRESSED_SHARE:
        return (
            f"{suppressed:.0%} suppressed: fix the cause, or add a maintenance window "
            "if it is planned work"
        )
    auto = line.auto_resolved / line.incidents
    if auto >= AUTO_SHARE:
        return (
            f"{auto:.0%} auto-resolved by playbooks: fix the cause so the playbook "
            "stops being needed"
        )
    return ""


def summarise(facts: Sequence[Facts], since: datetime, until: datetime) -> Report:
    by_rule: dict[str, list[Facts]] = defaultdict(list)
    by_service: dict[str, list[Facts]] = defaultdict(list)
    for f in facts:
        by_rule[f.rule].append(f)
        by_service[f.service].append(f)
    rules = []
    for rule, items in by_rule.items():
        line = RuleLine(
            rule=rule,
            incidents=len(items),
            resolved=sum(f.resolved for f in items),
            no_action=sum(f.no_action for f in items),
            suppressed=sum(f.suppressed for f in items),
            auto_resolved=sum(f.auto_resolved for f in items),
            recommendation="",
        )
        rules.append(replace(line, recommendation=recommend(line)))
    rules.sort(key=lambda r: (-r.incidents, -r.no_action, r.rule))
    services = sorted(
        (
            ServiceLine(
                service=service,
                incidents=len(items),
                to_acknowledge=spread(
                    [f.to_acknowledge for f in items if f.to_acknowledge is not None]
                ),
                to_resolve=spread([f.to_resolve for f in items if f.to_resolve is not None]),
            )
            for service, items in by_service.items()
        ),
        key=lambda s: (-s.incidents, s.service),
    )
    keys = Counter((f.group_key, f.rule) for f in facts)
    noisiest = tuple(
        KeyLine(key, rule, n)
        for (key, rule), n in sorted(keys.items(), key=lambda kv: (-kv[1], kv[0]))[:NOISIEST]
        if n > 1
    )
    return Report(since, until, len(facts), tuple(rules), tuple(services), noisiest)


# rendering -----------------------------------------------------------------------------------


def _spread_json(s: Spread) -> dict[str, Any]:
    return {"median_s": s.median, "p90_s": s.p90, "count": s.count}


def to_json(report: Report) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "incidents": report.incidents,
        "rules": [
            {
                "rule": r.rule,
                "incidents": r.incidents,
                "resolved": r.resolved,
                "resolved_no_action": r.no_action,
                "resolved_no_action_share": round(r.no_action_share, 3),
                "suppressed": r.suppressed,
                "auto_resolved": r.auto_resolved,
                "recommendation": r.recommendation,
            }
            for r in report.rules
        ],
        "services": [
            {
                "service": s.service,
                "incidents": s.incidents,
                "time_to_acknowledge": _spread_json(s.to_acknowledge),
                "time_to_resolve": _spread_json(s.to_resolve),
            }
            for s in report.services
        ],
        "noisiest_keys": [
            {"group_key": k.group_key, "rule": k.rule, "incidents": k.incidents}
            for k in report.noisiest
        ],
    }


def _took(seconds: float | None) -> str:
    return format_duration(timedelta(seconds=round(seconds))) if seconds is not None else "—"


def to_text(report: Report) -> str:
    """The report as the CLI prints it."""
    out = [
        f"{report.incidents} incidents opened {report.since:%Y-%m-%d %H:%M} to "
        f"{report.until:%Y-%m-%d %H:%M} UTC",
        "",
        f"{'rule':32} {'incidents':>9} {'no action':>11} {'suppressed':>10} {'auto':>5}",
    ]
    for r in report.rules:
        out.append(
            f"{r.rule:32} {r.incidents:>9} {r.no_action:>4} ({r.no_action_share:>4.0%}) "
            f"{r.suppressed:>10} {r.auto_resolved:>5}"
        )
    out += [
        "",
        f"{'service':32} {'ack median':>10} {'ack p90':>8} {'res median':>10} {'res p90':>8}",
    ]
    for s in report.services:
        out.append(
            f"{s.service:32} {_took(s.to_acknowledge.median):>10} {_took(s.to_acknowledge.p90):>8} "
            f"{_took(s.to_resolve.median):>10} {_took(s.to_resolve.p90):>8}"
        )
    out += ["", "noisiest keys:"]
    out += [f"  {k.incidents:>4}  {k.rule}  {k.group_key}" for k in report.noisiest] or ["  none"]
    advice = [r for r in report.rules if r.recommendation]
    out += ["", "recommendations:"]
    out += [f"  {r.rule}: {r.recommendation}" for r in advice] or ["  none"]
    return "\n".join(out) + "\n"
