"""JSON events, read the way Splunk's ``spath`` reads them.

Nested keys become ``a.b.c``; an array is ``a{}`` (its values) and objects inside it give
``a{}.b``. Values are the JSON text of scalars (``true``, ``null``, ``3.5``; strings without
quotes). A field with several values (from arrays) holds them comma-joined, as the Splunk
backend reads multi-value fields. A path picks one location: ``a.b``, ``a{}.b`` (all
elements), ``a{0}.b`` (the first element: JSON arrays count from 0).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from detectors.fields.model import Fields, SourcetypeExtraction, add_src_ip

JsonValue = object


def parse_json(text: str) -> JsonValue | None:
    """The JSON document ``text`` holds (an object or an array), or None."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[" or stripped[-1] not in "}]":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def scalar(value: JsonValue) -> str:
    """A JSON value as spath shows it: strings bare, the rest as JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _walk(value: JsonValue, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, prefix + "{}")
    elif prefix:
        yield prefix, scalar(value)


def flatten(document: JsonValue) -> Fields:
    """Every leaf of ``document`` by its spath name (several values comma-joined)."""
    collected: dict[str, list[str]] = {}
    for key, value in _walk(document, ""):
        collected.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else ",".join(v) for k, v in collected.items()}


_STEP_RE = re.compile(r"([^.{}]+)?((?:\{\d*\})*)")


def _steps(path: str) -> list[tuple[str | None, list[int | None]]]:
    steps: list[tuple[str | None, list[int | None]]] = []
    for part in path.split("."):
        m = _STEP_RE.fullmatch(part)
        if m is None or not part:
            raise ValueError(f"invalid spath path {path!r} at {part!r}")
        indexes: list[int | None] = [
            int(i) if i else None for i in re.findall(r"\{(\d*)\}", m.group(2))
        ]
        steps.append((m.group(1), indexes))
    return steps


def check_path(path: str) -> None:
    """Raise ValueError naming the step when ``path`` is not a valid location path."""
    _steps(path)


def lookup(document: JsonValue, path: str) -> str | None:
    """The value at ``path`` (several values comma-joined), or None when nothing is there."""
    current: list[JsonValue] = [document]
    for key, indexes in _steps(path):
        following: list[JsonValue] = []
        for node in current:
            if key is not None:
                if isinstance(node, list):  # a step into an array looks in every element
                    following.extend(i[key] for i in node if isinstance(i, dict) and key in i)
                    continue
                if not isinstance(node, dict) or key not in node:
                    continue
                node = node[key]
            nodes = [node]
            for index in indexes:
                picked: list[JsonValue] = []
                for item in nodes:
                    if isinstance(item, list):
                        if index is None:
                            picked.extend(item)
                        elif index < len(item):
                            picked.append(item[index])
                nodes = picked
            following.extend(nodes)
        current = following
        if not current:
            return None
    return ",".join(scalar(v) for v in current)


def extract_json(raw: str) -> Fields:
    document = parse_json(raw)
    return {} if document is None else flatten(document)


# containerd/CRI-O log lines: "<RFC 3339 time> stdout|stderr F|P <the container's line>"
_CRI_RE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (?P<stream>stdout|stderr) [FP] ")


def extract_json_lines(raw: str) -> Fields:
    """A JSON event, also behind a container runtime's prefix (which gives ``stream``)."""
    m = _CRI_RE.match(raw)
    if m is None:
        return extract_json(raw)
    found = extract_json(raw[m.end() :])
    found.setdefault("stream", m.group("stream"))
    return found


_CLOUDTRAIL_CIM = (
    ("src", "sourceIPAddress"),
    ("region", "awsRegion"),
    ("aws_account_id", "recipientAccountId"),
    ("user", "userIdentity.userName"),
    ("user", "userIdentity.sessionContext.sessionIssuer.userName"),
    ("user_type", "userIdentity.type"),
    ("user_arn", "userIdentity.arn"),
)


def extract_cloudtrail(raw: str) -> Fields:
    found = extract_json(raw)
    for cim, name in _CLOUDTRAIL_CIM:
        value = found.get(name)
        if value and cim not in found:
            found[cim] = value
    found.setdefault("action", "failure" if "errorCode" in found else "success")
    add_src_ip(found)
    return found


CLOUDTRAIL = SourcetypeExtraction(
    "aws:cloudtrail",
    ("aws:cloudtrail",),
    extract_cloudtrail,
    frozenset(
        {
            "eventName",
            "eventSource",
            "eventTime",
            "errorCode",
            "errorMessage",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "recipientAccountId",
            "userIdentity.type",
            "userIdentity.arn",
            "userIdentity.userName",
            "action",
            "src_ip",
            *(cim for cim, _ in _CLOUDTRAIL_CIM),
        }
    ),
    open_ended=True,
)
JSON = SourcetypeExtraction(
    "json",
    ("_json", "json", "*:json", "kube:container:*", "kube:*", "docker:*", "aws:*", "app:json"),
    extract_json_lines,
    frozenset({"stream"}),
    open_ended=True,
)
