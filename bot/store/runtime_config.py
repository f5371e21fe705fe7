"""Remediation policy that admins change at run time, kept in the database (``settings_kv``).

Every replica reads the same rows, so a change made through one replica (the REST API, a chat
command, the CLI) holds on all of them:

- ``kill_switch``: when on, no remediation starts and no step that has not begun begins.
  :func:`read_kill_switch` caches its answer for at most :data:`KILL_SWITCH_TTL_S` seconds per
  process, so every replica sees a change within a second.
- ``category:<name>``: the :class:`CategoryPolicy` of each of the six rule categories.
- ``max_concurrent_resolutions``: how many runs may be live at once across all replicas.
- ``playbook_disabled:<id>``: playbooks the circuit breaker (or an admin) turned off, with why
  (:mod:`bot.store.breakers`).

Every change is written to the audit chain in the same transaction, with the state before and
after in the entry's ``data``.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, select

from bot.domain.hits import Category
from bot.errors import NotFound, PermanentError
from bot.store.settings_kv import SETTINGS, audit_entry, read_locked, read_value, write_value

KILL_SWITCH_KEY = "kill_switch"
MAX_CONCURRENT_KEY = "max_concurrent_resolutions"
CATEGORY_PREFIX = "category:"
KILL_SWITCH_TTL_S = 0.5
DEFAULT_MAX_CONCURRENT = 10
CATEGORIES = tuple(c.value for c in Category)


@dataclass(frozen=True, slots=True)
class KillSwitch:
    on: bool
    by: str = ""
    reason: str = ""
    at: datetime | None = None

    def describe(self) -> str:
        """``"on since 12:04 UTC by console:ann: deploy freeze"`` or ``"off"``."""
        if not self.on:
            return "off"
        since = f" since {self.at:%H:%M} UTC" if self.at else ""
        return f"on{since} by {self.by}: {self.reason}"


@dataclass(frozen=True, slots=True)
class KillSwitchChange:
    switch: KillSwitch
    changed: bool  # False when it already was in the asked state
    message: str  # "kill switch on since ..." / "kill switch already on since ..."


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    """How remediation behaves for incidents of one category (empty allowed = every playbook)."""

    category: str
    enabled: bool = True
    auto: bool = False
    threshold: float = 0.90
    max_retries: int = 2
    notify_required: bool = True
    allowed_playbooks: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["allowed_playbooks"] = list(self.allowed_playbooks)
        return out


Threshold = Annotated[float, Field(ge=0.5, le=1.0, allow_inf_nan=False)]


class CategoryUpdate(BaseModel):
    """A change to one category's policy: fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    auto: bool | None = None
    threshold: Threshold | None = None
    max_retries: Annotated[int, Field(ge=0, le=10)] | None = None
    notify_required: bool | None = None
    allowed_playbooks: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=200
    )

    def apply(self, policy: CategoryPolicy) -> CategoryPolicy:
        changes: dict[str, Any] = self.model_dump(exclude_none=True)
        if "allowed_playbooks" in changes:
            changes["allowed_playbooks"] = tuple(dict.fromkeys(changes["allowed_playbooks"]))
        return replace(policy, **changes)


def describe_validation(exc: ValidationError) -> str:
    """``"threshold: Input should be less than or equal to 1"`` for each problem."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def check_category(category: str) -> str:
    """The category name, or :class:`NotFound` naming the six."""
    if category not in CATEGORIES:
        raise NotFound(f"no category {category!r}: the categories are {', '.join(CATEGORIES)}")
    return category


# the kill switch -----------------------------------------------------------------------------

_kill_cache: weakref.WeakKeyDictionary[Engine, tuple[float, KillSwitch]] = (
    weakref.WeakKeyDictionary()
)


def _kill_switch(value: Any) -> KillSwitch:
    if not isinstance(value, dict):
        return KillSwitch(False)
    at = value.get("at")
    return KillSwitch(
        bool(value.get("on")),
        str(value.get("by", "")),
        str(value.get("reason", "")),
        datetime.fromisoformat(at) if at else None,
    )


def read_kill_switch(engine: Engine | Connection) -> KillSwitch:
    """The kill switch as stored; an engine's answer is cached for at most 0.5 s per process
    (a connection reads the row in its own transaction, uncached)."""
    if isinstance(engine, Connection):
        return _kill_switch(read_value(engine, KILL_SWITCH_KEY))
    cached = _kill_cache.get(engine)
    clock = time.monotonic()
    if cached is not None and clock - cached[0] < KILL_SWITCH_TTL_S:
        return cached[1]
    with engine.connect() as conn:
        found = _kill_switch(read_value(conn, KILL_SWITCH_KEY))
    _kill_cache[engine] = (clock, found)
    return found


def change_kill_switch(
    engine: Engine, on: bool, actor: str, surface: str, reason: str, now: datetime
) -> KillSwitchChange:
    """Turn the kill switch on or off (idempotent: asking for the current state keeps who set
    it and why, and is recorded as a duplicate)."""
    reason = reason.strip()
    if not actor.strip():
        raise PermanentError("the kill switch needs an actor: who is changing it")
    if not reason:
        word = "activating" if on else "deactivating"
        raise PermanentError(f"{word} the kill switch needs a reason")
    with engine.begin() as conn:
        before = _kill_switch(read_locked(conn, KILL_SWITCH_KEY, now))
        if before.on == on:
            switch, changed = before, False
            message = f"kill switch already {before.describe()}"
        else:
            switch, changed = KillSwitch(on, actor, reason, now), True
            stored = {"on": on, "by": actor, "reason": reason, "at": now.isoformat()}
            write_value(conn, KILL_SWITCH_KEY, stored, actor, now)
            message = f"kill switch {switch.describe()}"
        audit_entry(
            conn,
            now,
            actor,
            surface,
            "kill_switch",
            reason,
            {"on": on, "reason": reason},
            result="applied" if changed else "duplicate",
            detail=message,
        )
    _kill_cache.pop(engine, None)
    return KillSwitchChange(switch, changed, message)


def set_kill_switch(
    engine: Engine, on: bool, actor: str, surface: str, reason: str, now: datetime
) -> KillSwitch:
    """As :func:`change_kill_switch`, answering the switch as it now stands."""
    return change_kill_switch(engine, on, actor, surface, reason, now).switch


# categories ----------------------------------------------------------------------------------


def _policy(category: str, value: Any) -> CategoryPolicy:
    policy = CategoryPolicy(category)
    if not isinstance(value, dict):
        return policy
    try:
        return CategoryUpdate.model_validate(
            {k: v for k, v in value.items() if k != "category"}
        ).apply(policy)
    except ValidationError:  # a row written by hand that no longer validates: the defaults
        return policy


def read_category(conn_or_engine: Engine | Connection, category: str) -> CategoryPolicy:
    check_category(category)
    if isinstance(conn_or_engine, Connection):
        return _policy(category, read_value(conn_or_engine, CATEGORY_PREFIX + category))
    with conn_or_engine.connect() as conn:
        return _policy(category, read_value(conn, CATEGORY_PREFIX + category))


def read_categories(conn_or_engine: Engine | Connection) -> dict[str, CategoryPolicy]:
    """Every category's policy (the defaults where nobody changed it), in the usual order."""
    if not isinstance(conn_or_engine, Connection):
        with conn_or_engine.connect() as conn:
            return read_categories(conn)
    keys = [CATEGORY_PREFIX + c for c in CATEGORIES]
    rows = conn_or_engine.execute(
        select(SETTINGS.c.key, SETTINGS.c.value_json).where(SETTINGS.c.key.in_(keys))
    )
    stored = {r.key[len(CATEGORY_PREFIX) :]: json.loads(r.value_json) for r in rows}
    return {c: _policy(c, stored.get(c)) for c in CATEGORIES}


def validate_policy(policy: CategoryPolicy, known_playbooks: Collection[str] | None) -> None:
    """Raise :class:`PermanentError` naming the field when ``policy`` is out of bounds."""
    check_category(policy.category)
    try:
        CategoryUpdate.model_validate(
            {k: v for k, v in policy.as_json().items() if k != "category"}
        )
    except ValidationError as exc:
        raise PermanentError(describe_validation(exc)) from None
    if known_playbooks is not None:
        unknown = [p for p in policy.allowed_playbooks if p not in known_playbooks]
        if unknown:
            known = ", ".join(sorted(known_playbooks)) or "none are loaded"
            raise PermanentError(
                f"allowed_playbooks: no playbook {', '.join(map(repr, unknown))} (known: {known})"
            )


def save_category_in(
    conn: Connection,
    policy: CategoryPolicy,
    actor: str,
    surface: str,
    now: datetime,
    known_playbooks: Collection[str] | None = None,
) -> CategoryPolicy:
    """Store ``policy`` in this transaction and audit it (before and after); answers it."""
    validate_policy(policy, known_playbooks)
    key = CATEGORY_PREFIX + policy.category
    before = _policy(policy.category, read_locked(conn, key, now))
    write_value(conn, key, policy.as_json(), actor, now)
    changed = [
        f"{name} {getattr(before, name)!r} -> {getattr(policy, name)!r}"
        for name in ("enabled", "auto", "threshold", "max_retries", "notify_required")
        if getattr(before, name) != getattr(policy, name)
    ]
    if before.allowed_playbooks != policy.allowed_playbooks:
        old, new = list(before.allowed_playbooks), list(policy.allowed_playbooks)
        changed.append(f"allowed_playbooks {old} -> {new}")
    audit_entry(
        conn,
        now,
        actor,
        surface,
        "config_category",
        policy.category,
        {"category": policy.category, "before": before.as_json(), "after": policy.as_json()},
        detail="; ".join(changed) or "no change",
    )
    return policy


def save_category(
    engine: Engine,
    policy: CategoryPolicy,
    actor: str,
    surface: str,
    now: datetime,
    known_playbooks: Collection[str] | None = None,
) -> CategoryPolicy:
    with engine.begin() as conn:
        return save_category_in(conn, policy, actor, surface, now, known_playbooks)


# the concurrency limit -----------------------------------------------------------------------


def read_max_concurrent(
    conn_or_engine: Engine | Connection, default: int = DEFAULT_MAX_CONCURRENT
) -> int:
    """``max_concurrent_resolutions`` as an admin set it, else ``default`` (from settings)."""
    if not isinstance(conn_or_engine, Connection):
        with conn_or_engine.connect() as conn:
            return read_max_concurrent(conn, default)
    value = read_value(conn_or_engine, MAX_CONCURRENT_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def save_max_concurrent_in(
    conn: Connection, value: int, actor: str, surface: str, now: datetime, default: int
) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise PermanentError(f"max_concurrent_resolutions: must be 1..1000, not {value!r}")
    stored = read_locked(conn, MAX_CONCURRENT_KEY, now)
    before = stored if isinstance(stored, int) else default
    write_value(conn, MAX_CONCURRENT_KEY, value, actor, now)
    audit_entry(
        conn,
        now,
        actor,
        surface,
        "config_limit",
        MAX_CONCURRENT_KEY,
        {"key": MAX_CONCURRENT_KEY, "before": before, "after": value},
        detail=f"max_concurrent_resolutions {before} -> {value}",
    )
    return value
