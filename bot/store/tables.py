"""The tables. Every change to them comes with an Alembic migration in ``migrations/``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime


def _at(nullable: bool = False, index: bool = False) -> object:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    group_key: str = Field(index=True, max_length=512)
    # equals group_key while the incident is active, NULL once resolved: at most one active
    # incident per group, enforced by the database even across replicas
    active_key: str | None = Field(default=None, unique=True, max_length=512)
    rule_id: str = Field(index=True, max_length=200)
    title: str = Field(max_length=500)
    severity: str = Field(max_length=16, index=True)
    category: str = Field(max_length=32)
    service: str = Field(default="", max_length=200, index=True)
    host: str = Field(default="", max_length=255, index=True)
    owner: str = Field(default="", max_length=200)
    state: str = Field(max_length=16, index=True)
    previous_state: str | None = Field(default=None, max_length=16)
    suppressed_until: datetime | None = _at(nullable=True, index=True)  # type: ignore[assignment]
    state_changed_by: str = Field(default="", max_length=255)
    state_changed_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    resolved_at: datetime | None = _at(nullable=True, index=True)  # type: ignore[assignment]
    assignee: str = Field(default="", max_length=255)
    runbook: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _at(index=True)  # type: ignore[assignment]
    updated_at: datetime = _at(index=True)  # type: ignore[assignment]
    first_seen: datetime = _at()  # type: ignore[assignment]
    last_seen: datetime = _at()  # type: ignore[assignment]
    hit_count: int = 0
    alert_count: int = 1
    rca_status: str = Field(default="pending", max_length=32)
    rca_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    muted_by: str | None = Field(default=None, max_length=64)
    labels_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    search_link: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    page_ref: str = Field(default="", max_length=255)  # the pager's dedup key once paged
    page_url: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    oncall: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    version: int = 1


class AlertRow(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("incident_id", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True, ondelete="CASCADE")
    fingerprint: str = Field(max_length=64, index=True)
    rule_id: str = Field(max_length=200)
    group_json: str = Field(sa_column=Column(Text, nullable=False))
    count: int = 0
    value: float = 0.0
    first_seen: datetime = _at()  # type: ignore[assignment]
    last_seen: datetime = _at()  # type: ignore[assignment]
    evidence_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))


class TimelineRow(SQLModel, table=True):
    __tablename__ = "timeline"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True, ondelete="CASCADE")
    at: datetime = _at()  # type: ignore[assignment]
    actor: str = Field(max_length=255)
    surface: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _at(index=True)  # type: ignore[assignment]
    actor: str = Field(max_length=255, index=True)
    surface: str = Field(max_length=32)
    action: str = Field(max_length=64)
    incident_id: int | None = Field(default=None, index=True)
    before_state: str = Field(default="", max_length=16)
    after_state: str = Field(default="", max_length=16)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    result: str = Field(max_length=16)  # applied | refused | duplicate
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    correlation_id: str = Field(default="", max_length=64)
    # structured details (rule, query, window; prompt hash; plan; step output), redacted
    data_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # the hash chain: each entry stores the previous entry's hash and its own (see bot.store.audit)
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64, index=True)


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    key: str = Field(primary_key=True, max_length=255)
    created_at: datetime = _at(index=True)  # type: ignore[assignment]
    incident_id: int | None = None
    response_json: str = Field(sa_column=Column(Text, nullable=False))


class SilenceRow(SQLModel, table=True):
    __tablename__ = "silences"

    id: int | None = Field(default=None, primary_key=True)
    matchers_json: str = Field(sa_column=Column(Text, nullable=False))
    starts_at: datetime = _at()  # type: ignore[assignment]
    ends_at: datetime = _at(index=True)  # type: ignore[assignment]
    created_by: str = Field(max_length=255)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _at()  # type: ignore[assignment]


class CardRefRow(SQLModel, table=True):
    __tablename__ = "card_refs"
    __table_args__ = (UniqueConstraint("incident_id", "surface", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True, ondelete="CASCADE")
    surface: str = Field(max_length=32)
    channel: str = Field(max_length=255)  # as routed (a name or an id)
    message_id: str = Field(max_length=255)
    # the channel as the surface answered it (Slack answers an id for a routed #name)
    ref_channel: str | None = Field(default=None, max_length=255)
    created_at: datetime = _at()  # type: ignore[assignment]


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)
    surface: str = Field(max_length=32)
    channel: str = Field(max_length=255)
    kind: str = Field(max_length=16)  # post | update | reply
    incident_id: int | None = Field(default=None, index=True)
    order_key: str = Field(max_length=320, index=True)
    payload_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    severity_rank: int = 4
    # 0: caused by a person's press or command (goes first in its lane); 1: the bot's own
    priority: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    status: str = Field(default="pending", max_length=16)  # pending | sent | dead
    attempts: int = 0
    next_attempt_at: datetime = _at()  # type: ignore[assignment]
    created_at: datetime = _at()  # type: ignore[assignment]
    sent_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # which replica is delivering it, until when (a claimer that died lets the claim lapse)
    claimed_by: str = Field(default="", max_length=255)
    claimed_until: datetime | None = _at(nullable=True)  # type: ignore[assignment]


class RuleStateRow(SQLModel, table=True):
    __tablename__ = "rule_state"

    rule_id: str = Field(primary_key=True, max_length=200)
    last_window_end: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    last_run_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    last_success_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    next_run_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    last_duration_ms: float = 0.0
    last_hits: int = 0
    last_alerts: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    consecutive_failures: int = 0
    runs: int = 0
    errors: int = 0
    skipped: int = 0
    clean_runs: int = 0
    state_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class NotificationLogRow(SQLModel, table=True):
    """When each group was last notified: ``realert`` survives restarts."""

    __tablename__ = "notification_log"

    group_key: str = Field(primary_key=True, max_length=512)
    last_notified_at: datetime = _at()  # type: ignore[assignment]


class SettingRow(SQLModel, table=True):
    """Runtime settings changed by admins (the kill switch lives here)."""

    __tablename__ = "settings_kv"

    key: str = Field(primary_key=True, max_length=200)
    value_json: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _at()  # type: ignore[assignment]
    updated_by: str = Field(default="", max_length=255)


class LeaseRow(SQLModel, table=True):
    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=255)
    expires_at: datetime = _at()  # type: ignore[assignment]
    # raised on every change of holder: writes fenced with it are refused once it moved on
    generation: int = 0


class RuleMemoryRow(SQLModel, table=True):
    """Per-key memory of stateful rule types (see ``detectors.memory``)."""

    __tablename__ = "rule_memory"

    rule_id: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=512)
    value_json: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _at()  # type: ignore[assignment]


class ConversationRow(SQLModel, table=True):
    """Where a surface can post proactively (a Teams conversation reference, for example)."""

    __tablename__ = "conversations"

    surface: str = Field(primary_key=True, max_length=32)
    channel: str = Field(primary_key=True, max_length=255)
    reference_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _at()  # type: ignore[assignment]
    updated_at: datetime = _at()  # type: ignore[assignment]


class EscalationRow(SQLModel, table=True):
    """An incident's paging timer: survives restarts, runs under the scheduler lease."""

    __tablename__ = "escalations"

    incident_id: int = Field(primary_key=True, foreign_key="incidents.id", ondelete="CASCADE")
    policy: str = Field(default="", max_length=200)
    due_at: datetime = _at(index=True)  # type: ignore[assignment]
    status: str = Field(default="pending", max_length=16)  # pending | paged | cancelled
    paged_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    created_at: datetime = _at()  # type: ignore[assignment]


class WebhookEventRow(SQLModel, table=True):
    """Inbound events already handled (PagerDuty webhook ids, Slack retries): applied once."""

    __tablename__ = "webhook_events"

    source: str = Field(primary_key=True, max_length=32)
    event_id: str = Field(primary_key=True, max_length=255)
    received_at: datetime = _at(index=True)  # type: ignore[assignment]


class PlaybookRunRow(SQLModel, table=True):
    """One remediation run: planned, maybe approved, run step by step, verified or rolled back.

    ``active_target`` equals ``target`` while the run is live (awaiting approval, running,
    verifying, rolling back) and is NULL afterwards: one live run per target, enforced by the
    database across replicas, as ``incidents.active_key`` does for groups.
    """

    __tablename__ = "playbook_runs"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True, ondelete="CASCADE")
    playbook_id: str = Field(max_length=200, index=True)
    category: str = Field(default="", max_length=32)
    target: str = Field(default="", max_length=512, index=True)
    active_target: str | None = Field(default=None, unique=True, max_length=512)
    mode: str = Field(default="manual", max_length=16)  # manual | approval | auto
    status: str = Field(max_length=24, index=True)
    plan_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    plan_fingerprint: str = Field(default="", max_length=64)
    confidence: float = 0.0
    requested_by: str = Field(default="", max_length=255)
    surface: str = Field(default="", max_length=32)
    approval_required: bool = False
    approver: str = Field(default="", max_length=255)
    approval_expires_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    step_index: int = 0
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    claimed_by: str = Field(default="", max_length=255)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=255)
    created_at: datetime = _at(index=True)  # type: ignore[assignment]
    updated_at: datetime = _at()  # type: ignore[assignment]
    started_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    verify_due_at: datetime | None = _at(nullable=True, index=True)  # type: ignore[assignment]
    finished_at: datetime | None = _at(nullable=True, index=True)  # type: ignore[assignment]
    version: int = 1


class PlaybookStepRow(SQLModel, table=True):
    """One executor call of a run (a step or a rollback step) and what it answered."""

    __tablename__ = "playbook_steps"
    __table_args__ = (UniqueConstraint("run_id", "phase", "idx"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_runs.id", index=True, ondelete="CASCADE")
    phase: str = Field(max_length=16)  # step | rollback
    idx: int = 0
    name: str = Field(max_length=200)
    executor: str = Field(max_length=32)
    status: str = Field(max_length=16)  # running | succeeded | failed | skipped | interrupted
    attempts: int = 0
    started_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    finished_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    duration_ms: float = 0.0
    output: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class ApiTokenRow(SQLModel, table=True):
    """A person's API token: only its SHA-256 is kept; revoked tokens stay for the record."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, index=True)  # the identity the token acts as
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(default="", max_length=16)  # the first characters, to tell tokens apart
    created_at: datetime = _at()  # type: ignore[assignment]
    created_by: str = Field(default="", max_length=255)
    last_used_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]
    revoked_at: datetime | None = _at(nullable=True)  # type: ignore[assignment]


class ReplicaRow(SQLModel, table=True):
    """Each live bot process and its last heartbeat (for /ready, budgets and takeovers)."""

    __tablename__ = "replicas"

    holder: str = Field(primary_key=True, max_length=255)
    started_at: datetime = _at()  # type: ignore[assignment]
    seen_at: datetime = _at(index=True)  # type: ignore[assignment]
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RateBudgetRow(SQLModel, table=True):
    """A rate-limit lane's token bucket, shared by every replica and kept across restarts."""

    __tablename__ = "rate_budgets"

    lane: str = Field(primary_key=True, max_length=320)
    tokens: float = 0.0
    updated_at: datetime = _at()  # type: ignore[assignment]
