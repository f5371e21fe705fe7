"""Endpoint snapshots: what an agent on a host reports about it, stored as local events.

A snapshot is one JSON document (validated strictly: unknown keys are refused)::

    {"host": "win-app-1", "taken_at": "2026-11-22T10:00:00Z", "os": "Windows Server 2019",
     "cpu_pct": 12.5, "mem_used_pct": 61, "uptime_s": 86400, "pending_reboot": false,
     "last_patch_days": 12, "disks": [{"mount": "C:", "used_pct": 71.5}],
     "services": [{"name": "Spooler", "running": true}]}

It becomes events of ``index=endpoint sourcetype=snapshot`` at ``taken_at`` on the host, one per
fact the shipped rules look at: ``kind=host`` (os, cpu_pct, mem_used_pct, uptime_s,
pending_reboot, last_patch_days), one ``kind=disk`` per disk (mount, used_pct) and one
``kind=service`` per service (service_name, running, required). Booleans are ``true``/``false``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.errors import PermanentError
from integrations.local.events import Event, EventStore
from integrations.local.fleet import pairs, stamp, to_millis

INDEX = "endpoint"
SOURCETYPE = "snapshot"
SOURCE = "snapshot-api"

Name = Annotated[
    # a name needs a visible character; U+0085 is spelled out because JSON Schema's \s lacks it
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"[^\s\x85]"),
]
HostName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
Percent = Annotated[float, Field(ge=0, le=100)]


class Disk(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mount: Name
    used_pct: Percent


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    running: bool
    required: bool = True  # the agent watches it: stopped means trouble


class Snapshot(BaseModel):
    """One host's state at ``taken_at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: HostName
    taken_at: AwareDatetime
    os: Name
    cpu_pct: Percent
    mem_used_pct: Percent
    uptime_s: int | None = Field(default=None, ge=0)
    pending_reboot: bool = False
    last_patch_days: int | None = Field(default=None, ge=0, le=36_500)
    disks: list[Disk] = Field(default_factory=list, max_length=64)
    services: list[Service] = Field(default_factory=list, max_length=500)
    agent: Name | None = None


def parse_snapshot(payload: Any) -> Snapshot:
    """Validate ``payload`` (a mapping, or JSON text/bytes); raise PermanentError naming every
    bad field, e.g. ``snapshot: disks.0.used_pct: must be at most 100 (got 120)``."""
    try:
        if isinstance(payload, str | bytes | bytearray):
            return Snapshot.model_validate_json(payload)
        return Snapshot.model_validate(payload)
    except ValidationError as exc:
        raise PermanentError("snapshot: " + "; ".join(_problems(exc))) from None


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors()[:20]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "json_invalid":
            message = "not valid JSON"
        else:
            message = error["msg"][:1].lower() + error["msg"][1:]
            value = error.get("input")
            if isinstance(value, str | int | float | bool) and len(str(value)) <= 80:
                message += f" (got {value!r})"
        out.append(f"{where}: {message}")
    return out


def snapshot_events(snapshot: Snapshot) -> list[Event]:
    """The events ``snapshot`` stands for (see the module documentation)."""
    at = to_millis(snapshot.taken_at.astimezone(UTC))
    host = snapshot.host

    def event(**values: object) -> Event:
        facts = {key: _text(value) for key, value in values.items() if value is not None}
        raw = f"{stamp(at)} " + pairs(host=host, **facts)
        return Event(at, raw, index=INDEX, sourcetype=SOURCETYPE, source=SOURCE, host=host)

    events = [
        event(
            kind="host",
            os=snapshot.os,
            cpu_pct=snapshot.cpu_pct,
            mem_used_pct=snapshot.mem_used_pct,
            uptime_s=snapshot.uptime_s,
            pending_reboot=snapshot.pending_reboot,
            last_patch_days=snapshot.last_patch_days,
            agent=snapshot.agent,
        )
    ]
    events += [event(kind="disk", mount=d.mount, used_pct=d.used_pct) for d in snapshot.disks]
    events += [
        event(kind="service", service_name=s.name, running=s.running, required=s.required)
        for s in snapshot.services
    ]
    return events


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def ingest_snapshot(store: EventStore, payload: Any) -> int:
    """Validate one snapshot and write its events to ``store``; returns how many were written.

    Raises PermanentError (naming the bad fields) when the payload is not a valid snapshot."""
    return store.add(snapshot_events(parse_snapshot(payload)))


def example_snapshot(host: str, at: datetime, **changes: Any) -> dict[str, Any]:
    """A healthy snapshot of ``host`` as JSON-ready data, with ``changes`` applied on top."""
    document: dict[str, Any] = {
        "host": host,
        "taken_at": at.astimezone(UTC).isoformat(),
        "os": "Windows Server 2019",
        "cpu_pct": 14.0,
        "mem_used_pct": 58.0,
        "uptime_s": 604_800,
        "pending_reboot": False,
        "last_patch_days": 9,
        "disks": [{"mount": "C:", "used_pct": 62.5}, {"mount": "D:", "used_pct": 40.0}],
        "services": [
            {"name": "Spooler", "running": True},
            {"name": "W32Time", "running": True},
            {"name": "WinRM", "running": True},
        ],
    }
    document.update(changes)
    return document
