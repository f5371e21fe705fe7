"""What a search returns (Hit), what a detector makes of it (Alert) and their labels."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical, 4 for info: sorts most severe first."""
        return _RANK[self]


_RANK = {severity: index for index, severity in enumerate(Severity)}


class Category(StrEnum):
    NETWORK = "network"
    DATABASE = "database"
    APPLICATION = "application"
    SECURITY = "security"
    INFRASTRUCTURE = "infrastructure"
    USER_ACCESS = "user_access"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search over a closed time window ``[earliest, latest)`` (timezone-aware datetimes).

    ``index_earliest`` / ``index_latest``, when set, also bound the time each event was indexed
    (``[index_earliest, index_latest)``); only a backend whose ``index_time_bounds`` is true
    honours them (see docs/rules.md, "Late data and search cost")."""

    text: str
    earliest: datetime
    latest: datetime
    max_results: int = 10_000
    mode: Literal["export", "job"] = "export"  # Splunk: streaming export or a normal job
    index_earliest: datetime | None = None
    index_latest: datetime | None = None
    #: raw events with every field the backend extracts (Splunk: verbose search mode), for a
    #: shared search whose rules evaluate their own queries over them
    all_fields: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """One result row of a search.

    ``time`` is the event's ``_time`` (or the window end for aggregated rows); ``fields`` are all
    result fields as strings; ``raw`` is the event text (``_raw``) or, for aggregated rows, the row
    rendered as ``key=value`` pairs; ``indexed`` is when the event became searchable
    (``_indextime``), None when the backend did not say (aggregated rows).
    """

    time: datetime
    fields: Mapping[str, str]
    raw: str
    indexed: datetime | None = None

    @property
    def id(self) -> str:
        """A stable id: the same event seen through two overlapping windows has the same id."""
        digest = hashlib.blake2b(
            f"{self.time.timestamp():.6f}\x00{self.raw}".encode(), digest_size=6
        ).hexdigest()
        return f"ev-{digest}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One redacted evidence line, citable by ``id`` (RCA statements cite these)."""

    id: str
    time: datetime
    text: str


def fingerprint(rule_id: str, group: tuple[tuple[str, str], ...]) -> str:
    """The identity of an alert: the rule and its group-by values, order-independent."""
    parts = "\x1f".join(f"{k}={v}" for k, v in sorted(group))
    digest = hashlib.blake2b(f"{rule_id}\x1e{parts}".encode(), digest_size=10).hexdigest()
    return digest


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def group_key(rule_id: str, group: tuple[tuple[str, str], ...]) -> str:
    """Readable key of a group (``rule|k=v,k=v``): alerts with the same key join one incident.

    ``,``, ``=`` and ``\\`` inside names and values are escaped, so two different groups
    never share a key."""
    return rule_id + "|" + ",".join(f"{_escape(k)}={_escape(v)}" for k, v in sorted(group))


@dataclass(frozen=True, slots=True)
class Alert:
    """What one detector run found for one group: the unit that joins an incident.

    ``new_events`` counts the matching events not seen by an earlier run (so a sliding window
    never counts an event twice); ``events`` counts every matching event in the window (what a
    new incident starts its count with); ``value`` is the measure the rule compared.
    """

    rule_id: str
    group: tuple[tuple[str, str], ...]
    title: str
    severity: Severity
    category: Category
    service: str
    host: str
    owner: str
    first_seen: datetime
    last_seen: datetime
    new_events: int
    value: float
    evidence: tuple[Evidence, ...] = ()
    runbook: str = ""
    events: int = 0
    search_link: str = ""  # the search in the backend's own UI, with its time range
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule_id, self.group)

    @property
    def group_key(self) -> str:
        return group_key(self.rule_id, self.group)
