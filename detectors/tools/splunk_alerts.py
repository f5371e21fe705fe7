"""Turn one ``savedsearches.conf`` stanza into a rule (a mapping ready to write as YAML).

What converts, and how, is documented in ``docs/import-splunk.md``. A stanza either converts
(possibly leaving settings behind, each named in ``dropped``) or does not (``reasons`` says
why: a custom condition, a real-time or absolute time range, a comparison with the previous
run, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from detectors.tools.splunk_conf import Stanza

#: ``alert.severity`` (1 debug, 2 info, 3 warn, 4 error, 5 severe, 6 fatal) -> rule severity.
SEVERITIES = {"1": "info", "2": "info", "3": "low", "4": "medium", "5": "high", "6": "critical"}
DEFAULT_SEVERITY = "3"
RELATIONS = {
    "greater than": ">",
    "less than": "<",
    "equal to": "==",
    "not equal to": "!=",
}
COUNT_TYPES = ("number of events", "number of results")
HANDLED = frozenset(
    {
        "search",
        "description",
        "disabled",
        "enableSched",
        "cron_schedule",
        "dispatch.earliest_time",
        "dispatch.latest_time",
        "alert.severity",
        "counttype",
        "relation",
        "quantity",
        "alert_type",
        "alert_comparator",
        "alert_threshold",
        "alert_condition",
        "alert.suppress",
        "alert.suppress.fields",
        "alert.suppress.period",
        "alert.digest_mode",
        "actions",
    }
)
#: Settings about Splunk's own scheduling, display and bookkeeping: nothing to carry over.
IGNORED_PREFIXES = (
    "display.",
    "request.",
    "embed.",
    "auto_summarize",
    "dispatchAs",
    "vsid",
    "is_visible",
    "is_scheduled",
    "alert.track",
    "alert.expires",
    "alert.managedBy",
    "dispatch.ttl",
    "dispatch.lookups",
    "dispatch.spawn_process",
    "dispatch.auto_",
    "dispatch.buckets",
    "dispatch.max_time",
    "dispatch.reduce_freq",
    "dispatch.rt_",
    "dispatch.sample_ratio",
    "dispatch.index_earliest",
    "dispatch.index_latest",
    "schedule_window",
    "schedule_priority",
    "allow_skew",
    "realtime_schedule",
    "run_on_startup",
    "run_n_times",
    "max_concurrent",
    "restart_on_searchpeer_add",
    "defer_scheduled_searchable_idxc",
    "workload_pool",
    "federated.",
    "durable.",
)
_RELATIVE = re.compile(r"(?:-(?P<n>\d*)(?P<unit>[a-z]+))?(?:@(?P<snap>[a-z]+\d?))?", re.ASCII)
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86_400),
    **dict.fromkeys(("w", "week", "weeks"), 604_800),
}
_FINE_SNAPS = frozenset({"s", "sec", "second", "m", "min", "minute"})
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})


class Unconvertible(Exception):
    """A stanza setting that stops the conversion; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Conversion:
    stanza: str
    line: int
    rule: dict[str, Any] | None
    reasons: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


def slug(name: str, taken: set[str]) -> str:
    """A rule id from a stanza name, unique among ``taken`` (which it joins)."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80].strip("-") or "imported"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


def convert(stanza: Stanza, taken: set[str], category: str = "application") -> Conversion:
    """The rule for ``stanza``; ids already in ``taken`` are avoided (the new one is added)."""
    dropped: list[str] = []
    reasons: list[str] = []
    query = "\n".join(line.rstrip() for line in stanza.get("search").strip().splitlines())
    if not query:
        reasons.append("no 'search' to run")
    if not _is_alert(stanza):
        reasons.append("not an alert: no alert condition, alert action or tracking is set")
    threshold: dict[str, Any] | None = None
    window = delay = None
    try:
        threshold = _condition(stanza)
    except Unconvertible as exc:
        reasons.append(str(exc))
    try:
        window, delay = _time_range(stanza, dropped)
    except Unconvertible as exc:
        reasons.append(str(exc))
    if reasons:
        return Conversion(stanza.name, stanza.line, None, tuple(reasons))
    assert threshold is not None and window is not None and delay is not None

    rule: dict[str, Any] = {
        "id": slug(stanza.name, taken),
        "title": stanza.name,
    }
    if stanza.get("description"):
        rule["description"] = stanza.get("description")
    rule["type"] = "threshold"
    rule["query"] = query
    cron = stanza.get("cron_schedule")
    if cron:
        rule["schedule"] = cron
    else:
        rule["interval"] = duration_text(window)
        dropped.append(f"no cron_schedule: the rule runs every {duration_text(window)}")
    rule["window"] = duration_text(window)
    if delay:
        rule["query_delay"] = duration_text(delay)
    group_by, realert = _suppression(stanza, dropped)
    if group_by:
        rule["group_by"] = group_by
        if threshold["value"] > 0 or threshold["op"] != ">":
            dropped.append(
                "Splunk compares the count of all results; the rule compares each group's "
                f"count (group_by {', '.join(group_by)} from alert.suppress.fields)"
            )
    rule["threshold"] = threshold
    rule["severity"] = _severity(stanza, dropped)
    rule["category"] = category
    if realert:
        rule["realert"] = realert
    if _flag(stanza, "disabled"):
        rule["enabled"] = False
    elif not _flag(stanza, "enableSched", "1"):
        rule["enabled"] = False
        dropped.append("enableSched = 0: the search is not scheduled; the rule is disabled")
    if not _flag(stanza, "alert.digest_mode", "1"):
        dropped.append(
            "alert.digest_mode = 0 (trigger for each result): the rule raises one incident "
            "per group_by group instead"
        )
    dropped += _leftovers(stanza)
    return Conversion(stanza.name, stanza.line, rule, (), tuple(dropped))


def _flag(stanza: Stanza, key: str, default: str = "0") -> bool:
    return stanza.get(key, default).strip().lower() in _TRUE


def _is_alert(stanza: Stanza) -> bool:
    keys = stanza.values
    if any(k in keys for k in ("counttype", "alert_type", "alert_condition")):
        return True
    if _flag(stanza, "alert.track") or stanza.get("actions").strip():
        return True
    return any(k.startswith("action.") and k.count(".") == 1 and _flag(stanza, k) for k in keys)


def _condition(stanza: Stanza) -> dict[str, Any]:
    kind = (stanza.get("counttype") or stanza.get("alert_type") or "always").strip().lower()
    condition = stanza.get("alert_condition").strip()
    if kind == "custom" or condition:
        raise Unconvertible(
            f"custom alert condition ({condition or 'counttype = custom'}) is not converted: "
            "fold it into the query (| search ... or | where ...) and fire on 1 or more results"
        )
    if kind == "always":
        return {"op": ">=", "value": 0}
    if kind not in COUNT_TYPES:
        raise Unconvertible(
            f"counttype = {kind} is not converted: count it in the query "
            "(| stats dc(host) as hosts) and compare that field with threshold.field"
        )
    relation = (stanza.get("relation") or stanza.get("alert_comparator")).strip().lower()
    op = RELATIONS.get(relation)
    if op is None:
        raise Unconvertible(
            f"relation = {relation or '(missing)'} is not converted: only greater than, less "
            "than, equal to and not equal to compare with a number (rises by and drops by "
            "compare with the previous run)"
        )
    quantity = (stanza.get("quantity") or stanza.get("alert_threshold")).strip()
    try:
        value = float(quantity)
    except ValueError:
        raise Unconvertible(f"quantity = {quantity or '(missing)'} is not a number") from None
    return {"op": op, "value": int(value) if value.is_integer() else value}


def _time_range(stanza: Stanza, dropped: list[str]) -> tuple[timedelta, timedelta]:
    earliest = stanza.get("dispatch.earliest_time").strip()
    latest = stanza.get("dispatch.latest_time", "now").strip() or "now"
    if not earliest:
        raise Unconvertible("no dispatch.earliest_time: the search covers all time")
    back = _offset("dispatch.earliest_time", earliest, dropped)
    delay = _offset("dispatch.latest_time", latest, dropped)
    if back <= delay:
        raise Unconvertible(
            f"dispatch.earliest_time = {earliest} is not before dispatch.latest_time = {latest}"
        )
    return back - delay, delay


def _offset(key: str, text: str, dropped: list[str]) -> timedelta:
    """How far back from the run ``text`` (a relative time modifier) points."""
    lowered = text.lower()
    if lowered == "now":
        return timedelta(0)
    if lowered.startswith("rt"):
        raise Unconvertible(f"{key} = {text}: real-time searches are not converted")
    match = _RELATIVE.fullmatch(lowered)
    if match is None or not (match.group("unit") or match.group("snap")):
        raise Unconvertible(
            f"{key} = {text}: only relative times (-15m, -1h@h, now) convert; an absolute "
            "time cannot repeat on a schedule"
        )
    seconds = 0
    if match.group("unit"):
        size = _UNITS.get(match.group("unit"))
        if size is None:
            raise Unconvertible(f"{key} = {text}: unit {match.group('unit')!r} is not converted")
        seconds = int(match.group("n") or "1") * size
    snap = match.group("snap")
    if snap and snap not in _FINE_SNAPS:
        dropped.append(
            f"{key} = {text}: rule windows are not snapped to @{snap}; the rule looks back "
            "from each run"
        )
    return timedelta(seconds=seconds)


def _suppression(stanza: Stanza, dropped: list[str]) -> tuple[list[str], str]:
    if not _flag(stanza, "alert.suppress"):
        return [], ""
    fields = [f for f in re.split(r"[\s,]+", stanza.get("alert.suppress.fields")) if f]
    period = stanza.get("alert.suppress.period").strip()
    if not period:
        dropped.append("alert.suppress = 1 without alert.suppress.period: no realert is set")
    return fields, period


def _severity(stanza: Stanza, dropped: list[str]) -> str:
    level = stanza.get("alert.severity", DEFAULT_SEVERITY).strip() or DEFAULT_SEVERITY
    if level not in SEVERITIES:
        dropped.append(f"alert.severity = {level} is not 1 to 6: the rule uses low")
        level = DEFAULT_SEVERITY
    return SEVERITIES[level]


def _leftovers(stanza: Stanza) -> list[str]:
    out = []
    enabled = {
        key.removeprefix("action.")
        for key in stanza.values
        if key.startswith("action.") and key.count(".") == 1 and _flag(stanza, key)
    }
    listed = {name.strip() for name in stanza.get("actions").split(",") if name.strip()}
    if enabled | listed:
        out.append(
            f"alert actions ({', '.join(sorted(enabled | listed))}) are not converted: the bot "
            "posts cards where its routes say (BOT_ROUTES)"
        )
    for key, value in stanza.values.items():
        if key in HANDLED or key.startswith(("action.", *IGNORED_PREFIXES)):
            continue
        out.append(f"{key} = {value[:60]} is not converted")
    return out


def duration_text(delta: timedelta) -> str:
    """``90s`` -> ``90s``, ``3600s`` -> ``1h``: the largest unit that divides evenly."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
