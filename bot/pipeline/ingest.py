"""Ingest one detector run: alerts -> incidents -> outbox, in a single transaction.

Stages in order: group (fold alerts by key), dedup (a repeated alert updates its record), join or
open the incident (one active incident per group; a resolved one reopens within the flap window),
mute (silences, maintenance windows, inhibition), notify (realert, routes, coalesced card
refresh). Batched: a run of 100,000 hits is a handful of multi-row statements, not one
statement per hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot.domain.hits import Alert
from bot.domain.incident import Command, CommandKind, Incident, State, transition
from bot.domain.page import PageAction
from bot.gcpause import gc_paused
from bot.pipeline.escalate import EscalationPolicy, page_key, page_messages, timer_row
from bot.pipeline.group import GroupBatch, fold
from bot.pipeline.ingest_rows import (
    bump_counters,
    chunks,
    labels_of,
    last_notified,
    new_incident_row,
    record_notified,
    upsert_alerts,
)
from bot.pipeline.inhibit import Source
from bot.pipeline.mute import Muter, Silence
from bot.pipeline.notify import Router, card_posts, card_refreshes, enqueue
from bot.store import audit
from bot.store.repo import (
    INCIDENTS,
    OUTBOX,
    TIMELINE,
    insert_ignore,
    state_columns,
    to_incident,
)
from bot.store.tables import EscalationRow

ESCALATIONS = EscalationRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    router: Router
    flap_window: timedelta
    card_refresh: timedelta
    realert: timedelta = timedelta(0)
    escalation: EscalationPolicy | None = None
    #: what a new incident's root cause says from the start (``BOT_RCA=off``: that it is off,
    #: so no analysis runs for it); None: pending until analysed
    rca_json: str | None = None


@dataclass(slots=True)
class IngestResult:
    created: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    muted: list[int] = field(default_factory=list)
    held_by_realert: list[int] = field(default_factory=list)
    paged: list[int] = field(default_factory=list)
    messages: int = 0
    ranks: dict[int, int] = field(default_factory=dict)  # severity rank of new/reopened ones

    @property
    def new_or_reopened(self) -> list[int]:
        return self.created + self.reopened


@dataclass(frozen=True, slots=True)
class Detection:
    """What found this run's alerts, for the audit chain: the rule, its query, the window."""

    rule_id: str
    query: str
    start: datetime
    end: datetime


def ingest(
    conn: Connection,
    alerts: Sequence[Alert],
    now: datetime,
    policy: IngestPolicy,
    silences: Sequence[Silence] | Muter = (),
    detection: Detection | None = None,
) -> IngestResult:
    """Apply one run's alerts. The caller owns the transaction (``engine.begin()``).

    With ``detection``, each incident this run opens gets a ``detect`` audit entry (rule, query,
    window) in the same transaction. ``silences`` is a :class:`Muter` (silences, maintenance
    windows, inhibition) or just the active silences.
    """
    muter = silences if isinstance(silences, Muter) else Muter(silences)
    with gc_paused():
        return _ingest(conn, alerts, now, policy, muter, detection)


@dataclass(slots=True)
class _Run:
    """What the stages of one ingest share, and what they leave to write at the end."""

    conn: Connection
    now: datetime
    policy: IngestPolicy
    result: IngestResult = field(default_factory=IngestResult)
    incident_of: dict[str, Incident] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    notified: list[dict[str, Any]] = field(default_factory=list)
    muted: list[dict[str, Any]] = field(default_factory=list)
    was_muted: dict[int, str] = field(default_factory=dict)  # active incidents muted before


def _ingest(
    conn: Connection,
    alerts: Sequence[Alert],
    now: datetime,
    policy: IngestPolicy,
    muter: Muter,
    detection: Detection | None,
) -> IngestResult:
    run = _Run(conn, now, policy)
    batches = fold(alerts)
    if not batches:
        return run.result
    active, flapping = _find_incidents(conn, [b.key for b in batches], now, policy.flap_window)
    batches = [b for b in batches if not _stale(b, active, flapping)]
    if not batches:
        return run.result
    fresh = _join_or_reopen(run, batches, active, flapping)
    _open_incidents(run, fresh)
    upsert_alerts(conn, batches, run.incident_of, now, set(run.result.created))
    existing = {*run.result.updated, *run.result.reopened}
    bump_counters(conn, batches, run.incident_of, existing, now)
    _mute_and_notify(run, batches, muter)
    if detection is not None:
        _audit_detections(run, fresh, detection)
    _write(run)
    return run.result


def _find_incidents(
    conn: Connection, keys: Sequence[str], now: datetime, flap_window: timedelta
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per group, its active incident and a recently resolved one (flapping): one query."""
    active: dict[str, Any] = {}
    flapping: dict[str, Any] = {}
    flap = flap_window > timedelta(0)
    since = now - flap_window
    for chunk in chunks(keys):
        wanted = INCIDENTS.c.active_key.in_(chunk)
        if flap:
            wanted = wanted | (
                INCIDENTS.c.group_key.in_(chunk)
                & (INCIDENTS.c.state == State.RESOLVED.value)
                & (INCIDENTS.c.resolved_at >= since)
            )
        for found in conn.execute(select(INCIDENTS).where(wanted).order_by(INCIDENTS.c.id)):
            if found.active_key is not None:
                active[found.group_key] = found
            else:
                flapping[found.group_key] = found  # the latest wins
    for key in active:
        flapping.pop(key, None)
    return active, flapping


def _stale(batch: GroupBatch, active: dict[str, Any], flapping: dict[str, Any]) -> bool:
    """The group's incident was resolved and this run saw no new event, only ones from before
    the resolution: a sliding window still holding the lines the incident was about (after a
    fix ended them, say) neither reopens it nor opens another. A new event does, and so does an
    alert seen after the resolution (a pushed alert that is still firing)."""
    row = flapping.get(batch.key)
    if row is None or batch.key in active or batch.new_events:
        return False
    return row.resolved_at is not None and batch.last_seen <= row.resolved_at


def _join_or_reopen(
    run: _Run,
    batches: Sequence[GroupBatch],
    active: dict[str, Any],
    flapping: dict[str, Any],
) -> list[GroupBatch]:
    """Join each group's active incident or reopen its flapping one; answer the groups that
    need a new incident."""
    fresh: list[GroupBatch] = []
    for batch in batches:
        row = active.get(batch.key)
        if row is not None:
            run.incident_of[batch.key] = to_incident(row)
            run.result.updated.append(row.id)
            if row.muted_by:
                run.was_muted[row.id] = row.muted_by
            continue
        row = flapping.get(batch.key)
        if row is not None and _reopen(run, batch, row):
            continue
        fresh.append(batch)
    return fresh


def _reopen(run: _Run, batch: GroupBatch, row: Any) -> bool:
    incident = to_incident(row)
    change = transition(
        incident, Command(CommandKind.REFIRE, actor="bot", surface="pipeline"), run.now
    )
    after = change.after
    done = run.conn.execute(
        update(INCIDENTS)
        .where(INCIDENTS.c.id == incident.id, INCIDENTS.c.version == incident.version)
        .values(**state_columns(after), version=incident.version + 1)
    )
    if done.rowcount != 1:
        return False
    run.incident_of[batch.key] = _versioned(after, incident.version + 1)
    run.result.reopened.append(incident.id)
    run.timeline.append(_line(incident.id, run.now, "bot", "reopen", change.summary))
    return True


def _open_incidents(run: _Run, fresh: Sequence[GroupBatch]) -> None:
    if not fresh:
        return
    values_list = [new_incident_row(b, run.now, run.policy.rca_json) for b in fresh]
    # a plain multi-row insert, then the ids by their (unique) active key: much cheaper
    # than INSERT ... RETURNING, which SQLite runs row by row
    run.conn.execute(INCIDENTS.insert(), values_list)
    ids: dict[str, int] = {}
    for chunk in chunks([v["active_key"] for v in values_list]):
        for new_id, key in run.conn.execute(
            select(INCIDENTS.c.id, INCIDENTS.c.active_key).where(INCIDENTS.c.active_key.in_(chunk))
        ):
            ids[key] = new_id
    for values, batch in zip(values_list, fresh, strict=True):
        new_id = ids[values["active_key"]]
        run.incident_of[batch.key] = to_incident({**values, "id": new_id})
        run.result.created.append(new_id)
        head = batch.head
        run.timeline.append(
            _line(
                new_id,
                run.now,
                f"rule:{head.rule_id}",
                "open",
                f"opened by rule {head.rule_id}: {head.title} ({batch.events} events)",
            )
        )


def _mute_and_notify(run: _Run, batches: Sequence[GroupBatch], muter: Muter) -> None:
    """New and reopened incidents: muted, held by realert, or posted (and paged); the others
    get a coalesced card refresh when they have new events, and are notified now if they were
    muted and no longer are (a window ended, the inhibiting incident resolved)."""
    policy, now, result = run.policy, run.now, run.result
    fresh = set(result.created) | set(result.reopened)
    if muter.inhibits:  # this run's incidents inhibit too (host-down with its services)
        muter.observe(
            Source(run.incident_of[b.key].id, labels_of(b.head))
            for b in batches
            if run.incident_of[b.key].id in fresh
        )
    notify_keys = [b.key for b in batches if run.incident_of[b.key].id in fresh]
    realert = policy.realert > timedelta(0)
    notified_at = last_notified(run.conn, notify_keys) if realert else {}
    for batch in batches:
        incident = run.incident_of[batch.key]
        targets = policy.router.targets(incident)
        if incident.id not in fresh:
            if batch.new_events and _released(run, batch, incident, muter):
                _notify(run, batch, incident, targets)
            elif batch.new_events:
                run.messages.extend(card_refreshes(incident, targets, now, policy.card_refresh))
            continue
        result.ranks[incident.id] = incident.severity.rank
        mute = muter.mute(labels_of(batch.head), now, incident.id)
        if mute is not None:
            result.muted.append(incident.id)
            run.muted.append({"b_id": incident.id, "muted_by": mute.muted_by})
            run.timeline.append(_line(incident.id, now, "bot", "muted", mute.note))
            continue
        previous = notified_at.get(batch.key)
        if previous is not None and now - previous < policy.realert:
            result.held_by_realert.append(incident.id)
            run.timeline.append(
                _line(
                    incident.id,
                    now,
                    "bot",
                    "realert",
                    f"not notified: this group was notified at {previous:%H:%M:%S} UTC "
                    f"(realert {policy.realert})",
                )
            )
            continue
        _notify(run, batch, incident, targets)


def _notify(run: _Run, batch: GroupBatch, incident: Incident, targets: Any) -> None:
    """Post the incident's card and page (or arm its escalation timer)."""
    run.messages.extend(card_posts(incident, targets, run.now))
    run.notified.append({"group_key": batch.key, "last_notified_at": run.now})
    if run.policy.escalation is not None:
        run.pages.extend(
            _escalate(incident, run.policy.escalation, run.now, run.timers, run.timeline)
        )


def _released(run: _Run, batch: GroupBatch, incident: Incident, muter: Muter) -> bool:
    """A muted incident that still fires and is no longer muted: notified now, as Alertmanager
    notifies an alert once its silence expires or its inhibiting source resolves."""
    before = run.was_muted.get(incident.id)
    if before is None or incident.state is not State.OPEN:
        return False
    mute = muter.mute(labels_of(batch.head), run.now, incident.id)
    if mute is not None:
        return False
    run.muted.append({"b_id": incident.id, "muted_by": None})
    run.timeline.append(
        _line(incident.id, run.now, "bot", "unmuted", f"notified: {_ended(before)}, still firing")
    )
    return True


def _ended(muted_by: str) -> str:
    kind, _, name = muted_by.partition(":")
    return {
        "silence": f"silence {name} is over",
        "maintenance": f"maintenance window '{name}' ended",
        "inhibit": f"{name}, which inhibited it, is no longer active",
    }.get(kind, f"{muted_by} no longer mutes it")


def _audit_detections(run: _Run, fresh: Sequence[GroupBatch], detection: Detection) -> None:
    """One ``detect`` entry per incident this run opened: the rule, its query, the window."""
    entries = []
    for batch in fresh:
        incident = run.incident_of[batch.key]
        entries.append(
            {
                "at": run.now,
                "actor": f"rule:{detection.rule_id}",
                "surface": "pipeline",
                "action": "detect",
                "incident_id": incident.id,
                "after_state": incident.state.value,
                "result": "applied",
                "detail": f"{batch.events} events in {len(batch.alerts)} alert(s)",
                "data": {
                    "rule": detection.rule_id,
                    "query": detection.query,
                    "window": {
                        "start": detection.start.isoformat(),
                        "end": detection.end.isoformat(),
                    },
                    "group": batch.key,
                    "events": batch.events,
                },
            }
        )
    audit.append(run.conn, entries)


def _write(run: _Run) -> None:
    """Write what the stages left: mutes, the notification log, timers, timeline, outbox."""
    conn = run.conn
    if run.muted:
        conn.execute(
            update(INCIDENTS)
            .where(INCIDENTS.c.id == bindparam("b_id"))
            .values(muted_by=bindparam("muted_by")),
            run.muted,
        )
    if run.notified and run.policy.realert > timedelta(0):
        record_notified(conn, run.notified)
    if run.timers:
        paged = [
            {"b_id": t["incident_id"], "b_ref": t.pop("page_ref")}
            for t in run.timers
            if "page_ref" in t
        ]
        armed = [t["incident_id"] for t in run.timers]
        conn.execute(ESCALATIONS.delete().where(ESCALATIONS.c.incident_id.in_(armed)))
        conn.execute(ESCALATIONS.insert(), run.timers)
        if paged:
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == bindparam("b_id"))
                .values(page_ref=bindparam("b_ref")),
                paged,
            )
    if run.timeline:
        conn.execute(TIMELINE.insert(), run.timeline)
    insert_ignore(conn, OUTBOX, run.pages, "idempotency_key")
    enqueue(conn, run.messages)
    run.result.messages = len(run.messages) + len(run.pages)
    run.result.paged = [p["incident_id"] for p in run.pages]


def _escalate(
    incident: Incident,
    policy: EscalationPolicy,
    now: datetime,
    timers: list[dict[str, Any]],
    timeline: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Page now, or start the incident's escalation timer, as its policy says."""
    rule = policy.rule_for(incident)
    if rule is None or rule.after is None:
        return []
    timer = timer_row(incident, rule, now)
    if rule.after > timedelta(0):
        timers.append(timer)
        return []
    timer.update(status="paged", paged_at=now)
    timers.append({**timer, "page_ref": page_key(incident)})
    timeline.append(
        _line(incident.id, now, "bot", "page", f"paged {policy.pager} ({rule.channel})")
    )
    return page_messages(incident, policy, PageAction.TRIGGER, rule.channel, "open", now)


def _versioned(incident: Incident, version: int) -> Incident:
    return replace(incident, version=version)


def _line(incident_id: int, at: datetime, actor: str, kind: str, text: str) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "at": at,
        "actor": actor,
        "surface": "pipeline",
        "kind": kind,
        "text": text,
    }
