"""Alertmanager API v2 alerts on the wire, validated with Alertmanager's own answers.

Alertmanager (0.25) answers a body it cannot parse with 400 and a JSON ``{"code", "message"}``,
a missing required field with 422 (``"0.labels in body is required"``), and alerts that parse
but are invalid with 400 and the joined validation texts as a JSON string, after storing the
valid ones ("best effort"). These texts are copied from its sources (``api/v2/api.go``,
``prometheus/common`` ``model.Alert.Validate``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from bot.push.mapping import PushedAlert

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Go's zero time, which Grafana and others send for "no end"
ZERO_YEAR = 1


class WireAlert(BaseModel):
    """One ``postableAlert``. Unknown fields are ignored, as Alertmanager's decoder does."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""


_ALERTS = TypeAdapter(list[WireAlert])


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """The request as a whole is refused: ``status`` and Alertmanager's JSON error object."""

    status: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Parsed:
    valid: list[PushedAlert]
    errors: list[str]  # one Alertmanager validation text per invalid alert


def _time(value: datetime | None) -> datetime | None:
    if value is None or value.year == ZERO_YEAR:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_VALID_NAMES: set[str] = set()  # names seen valid (a storm repeats the same few names)


def _invalid_name(names: Mapping[str, str]) -> str | None:
    for name in names:
        if name in _VALID_NAMES:
            continue
        if not LABEL_NAME.fullmatch(name):
            return name
        if len(_VALID_NAMES) < 10_000:
            _VALID_NAMES.add(name)
    return None


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate(alert: WireAlert, now: datetime, resolve_timeout: timedelta) -> PushedAlert | str:
    """Alertmanager's defaults and checks for one alert: the alert, or its error text."""
    starts, ends = _time(alert.startsAt), _time(alert.endsAt)
    timeout = False
    if starts is None:
        starts = now if ends is None else ends
    if ends is None:
        timeout = True
        ends = now + resolve_timeout
    labels = {k: v for k, v in (alert.labels or {}).items() if v != ""}
    annotations = dict(alert.annotations or {})
    if ends < starts:
        return "start time must be before end time"
    bad = _invalid_name(labels)
    if bad is not None:
        return f"invalid label set: invalid name {_go_quote(bad)}"
    if not labels:
        return "at least one label pair required"
    bad = _invalid_name(annotations)
    if bad is not None:
        return f"invalid annotations: invalid name {_go_quote(bad)}"
    return PushedAlert(labels, annotations, starts, ends, alert.generatorURL, timeout)


def parse_alerts(body: bytes, now: datetime, resolve_timeout: timedelta) -> Parsed | ParseFailure:
    if not body.strip():
        return ParseFailure(422, 602, "alerts in body is required")
    try:
        alerts = _ALERTS.validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = first.get("ctx", {}).get("error") or first["msg"]
        detail = f"{reason} at {where}" if where else str(reason)
        return ParseFailure(400, 400, f'parsing alerts body from "" failed, because {detail}')
    for index, alert in enumerate(alerts):
        if alert.labels is None:
            return ParseFailure(422, 602, f"{index}.labels in body is required")
    valid: list[PushedAlert] = []
    errors: list[str] = []
    for alert in alerts:
        checked = validate(alert, now, resolve_timeout)
        if isinstance(checked, str):
            errors.append(checked)
        else:
            valid.append(checked)
    return Parsed(valid, errors)
