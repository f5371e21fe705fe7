"""A loopback fake of PagerDuty over TLS: Events API v2, the REST calls the bot makes, and
signed webhooks v3 back to the bot.

python-pagerduty refuses ``http://`` base URLs, so the fake serves HTTPS on 127.0.0.1 with a
certificate from a throw-away CA (:func:`make_tls`); clients get ``verify=tls.client`` (an
``ssl.SSLContext``) or ``PAGERDUTY_CA_FILE=tls.ca_file``.

Events v2 ``POST /v2/enqueue`` answers like PagerDuty: 202 ``{"status": "success", "message":
"Event processed", "dedup_key": …}``; 400 ``{"status": "invalid event", "message": …, "errors":
[…]}`` (routing key of 32 characters, summary ≤ 1,024, severity, dedup key ≤ 255, action); 429
``{"status": "throttle event", …}`` past ``rate_limit`` events per ``window`` seconds per routing
key (120 per minute, as PagerDuty). A trigger opens a fake incident (one per routing key and
dedup key while not resolved); acknowledge and resolve move it.

REST (``Authorization: Token token=<api_token>``): ``GET /incidents?incident_key=``, ``GET
/incidents/{id}``, ``GET /incidents/{id}/alerts``, ``POST /incidents/{id}/notes``, ``GET
/oncalls?escalation_policy_ids[]=``, ``GET /services/{id}``, ``GET /abilities``.

Knobs: :meth:`fail_next` (answer the next requests on a path with a status), ``oncall`` (policy
id → [(name, level)]), ``services`` (service id → policy id), ``grouping`` (alert grouping on:
a trigger while the routing key has a live incident joins it as another alert, as PagerDuty's
intelligent or time-based grouping does; its dedup key is then that alert's ``alert_key``, not
the incident's ``incident_key``). Records: ``events`` (every enqueue
attempt with its answer), ``requests``, ``notes``, ``incidents``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.faults import FaultSwitch, FaultyHandler
from tests.fakes.tls import Tls, make_tls

__all__ = ["FakePagerDuty", "Tls", "make_tls"]

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
WEB = "https://acme.pagerduty.test"
API = "https://api.pagerduty.test"
THROTTLED = "Requests for this service are arriving too quickly.  Please retry later."


# records -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enqueued:
    """One ``POST /v2/enqueue`` as received, with the status it was answered."""

    routing_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]
    status: int
    at: float  # time.monotonic()


@dataclass(slots=True)
class FakeIncident:
    id: str
    number: int
    incident_key: str
    routing_key: str
    title: str
    status: str = "triggered"
    assignees: list[tuple[str, str]] = field(default_factory=lambda: [("PLH1HKV", "Ann Example")])
    alerts: list[str] = field(default_factory=list)  # the dedup keys of its alerts

    def alert_json(self, number: int, key: str) -> dict[str, Any]:
        """One entry of ``GET /incidents/{id}/alerts``."""
        return {
            "id": f"A{self.number:05d}{number:03d}",
            "type": "alert",
            "summary": self.title,
            "status": "resolved" if self.status == "resolved" else "triggered",
            "alert_key": key,
            "incident": {**_ref("incident", self.id, self.title), "html_url": self.html_url},
            "created_at": "2026-11-22T10:00:04Z",
        }

    @property
    def html_url(self) -> str:
        return f"{WEB}/incidents/{self.id}"

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "incident",
            "self": f"{API}/incidents/{self.id}",
            "html_url": self.html_url,
            "number": self.number,
            "status": self.status,
            "incident_key": self.incident_key,
            "created_at": "2026-11-22T10:00:04Z",
            "title": self.title,
            "service": _ref("service", "PF9KMXH", "checkout"),
            "assignees": [_ref("user", uid, name) for uid, name in self.assignees],
            "escalation_policy": _ref("escalation_policy", "PUS0KTE", "Web on call"),
            "teams": [],
            "priority": None,
            "urgency": "high",
            "conference_bridge": None,
            "resolve_reason": None,
        }

    def note(self, content: str) -> dict[str, Any]:
        """The ``data`` of an ``incident.annotated`` webhook about this incident."""
        ref = {**_ref("incident", self.id, self.title), "html_url": self.html_url}
        ref["type"] = "incident_reference"
        return {
            "incident": ref,
            "id": "PWL7QXS",
            "content": content,
            "trimmed": False,
            "type": "incident_note",
        }


def _ref(kind: str, ref_id: str, summary: str) -> dict[str, str]:
    plural = "escalation_policies" if kind == "escalation_policy" else f"{kind}s"
    return {
        "html_url": f"{WEB}/{plural}/{ref_id}",
        "id": ref_id,
        "self": f"{API}/{plural}/{ref_id}",
        "summary": summary,
        "type": f"{kind}_reference",
    }


# the server --------------------------------------------------------------------------------------


class FakePagerDuty:
    """``with FakePagerDuty(tls) as pd:``; ``pd.url`` serves Events v2 and REST alike."""

    def __init__(
        self,
        tls: Tls,
        *,
        api_token: str = "fake-rest-api-token-0123456789",
        rate_limit: int = 120,
        window: float = 60.0,
    ) -> None:
        self.tls = tls
        self.api_token = api_token
        self.rate_limit = rate_limit
        self.window = window
        self.events: list[Enqueued] = []
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.notes: list[tuple[str, str, str]] = []  # (incident id, From, content)
        self.incidents: list[FakeIncident] = []
        self.oncall: dict[str, list[tuple[str, int]]] = {}
        self.services: dict[str, str] = {}
        self.grouping = False
        self._numbers = itertools.count(1001)
        self._lock = threading.Lock()
        self.faults = FaultSwitch()  # tests.fakes.faults: 5xx, 429, hang, reset for a while
        self._recent: dict[str, deque[float]] = {}
        self._failures: dict[str, deque[tuple[int, float | None]]] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._server.faults = self.faults  # type: ignore[attr-defined]
        self._server.socket = tls.server.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakePagerDuty:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # knobs and views -------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        path: str = "/v2/enqueue",
        retry_after: float | None = None,
    ) -> None:
        with self._lock:
            self._failures.setdefault(path, deque()).extend([(status, retry_after)] * count)

    def accepted(self, action: str | None = None) -> list[Enqueued]:
        with self._lock:
            return [
                e for e in self.events if e.status == 202 and (action is None or e.action == action)
            ]

    def incident(self, incident_key: str) -> FakeIncident:
        """The incident that holds the alert of ``incident_key`` (the newest)."""
        with self._lock:
            return next(i for i in reversed(self.incidents) if incident_key in i.alerts)

    # Events v2 -------------------------------------------------------------------------------

    def enqueue(self, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = body if isinstance(body, dict) else {}
        routing_key = str(body.get("routing_key", ""))
        action = str(body.get("event_action", ""))
        dedup = body.get("dedup_key")
        errors = _invalid(body, routing_key, action, dedup)
        with self._lock:
            failure = self._next_failure("/v2/enqueue")
            status, headers = 202, {}
            answer: dict[str, Any] = {}
            if failure is not None:
                status = failure[0]
                answer = {"status": "error", "message": "Internal Server Error"}
                if status == 429:
                    answer = {"status": "throttle event", "message": THROTTLED}
                elif status == 400:
                    answer = {"status": "invalid event", "message": "Event object is invalid"}
                    answer["errors"] = ["'payload' is missing or invalid"]
                if failure[1] is not None:
                    headers["Retry-After"] = f"{failure[1]:g}"
            elif errors:
                status = 400
                answer = {"status": "invalid event", "message": "Event object is invalid"}
                answer["errors"] = errors
            elif self._throttled(routing_key):
                status, answer = 429, {"status": "throttle event", "message": THROTTLED}
            else:
                dedup = dedup or hashlib.sha256(json.dumps(body).encode()).hexdigest()[:32]
                self._apply(routing_key, action, str(dedup), body)
                answer = {"status": "success", "message": "Event processed", "dedup_key": dedup}
            self.events.append(
                Enqueued(routing_key, action, str(dedup or ""), body, status, time.monotonic())
            )
        return status, answer, headers

    def _throttled(self, routing_key: str) -> bool:
        now = time.monotonic()
        recent = self._recent.setdefault(routing_key, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.rate_limit:
            return True
        recent.append(now)
        return False

    def _apply(self, routing_key: str, action: str, dedup: str, body: dict[str, Any]) -> None:
        open_ = [
            i for i in self.incidents if i.routing_key == routing_key and i.status != "resolved"
        ]
        live = next((i for i in open_ if dedup in i.alerts), None)
        if action == "trigger" and live is None and self.grouping and open_:
            open_[0].alerts.append(dedup)  # grouped into the open incident
        elif action == "trigger" and live is None:
            number = next(self._numbers)
            summary = str(body.get("payload", {}).get("summary", ""))
            self.incidents.append(
                FakeIncident(f"Q{number:05d}X", number, dedup, routing_key, summary, alerts=[dedup])
            )
        elif live is not None and action in ("acknowledge", "resolve"):
            live.status = "acknowledged" if action == "acknowledge" else "resolved"

    def _next_failure(self, path: str) -> tuple[int, float | None] | None:
        for prefix, queue in self._failures.items():
            if path.startswith(prefix) and queue:
                return queue.popleft()
        return None

    # REST ------------------------------------------------------------------------------------

    def rest(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any
    ) -> tuple[int, Any]:
        if headers.get("Authorization", "") != f"Token token={self.api_token}":
            return 401, {"error": {"message": "Authentication failed", "code": 2006}}
        with self._lock:
            failure = self._next_failure(path)
            if failure is not None:
                return failure[0], {"error": {"message": "Internal Server Error", "code": 2000}}
            parts = [p for p in path.split("/") if p]
            if method == "GET" and parts == ["abilities"]:
                return 200, {"abilities": ["teams", "read_only_users"]}
            if method == "GET" and parts == ["incidents"]:
                keys = query.get("incident_key", [])
                found = [i.json() for i in self.incidents if i.incident_key in keys]
                return 200, {"incidents": found, "limit": 25, "offset": 0, "more": False}
            if len(parts) >= 2 and parts[0] == "incidents":
                incident = next((i for i in self.incidents if i.id == parts[1]), None)
                if incident is None:
                    return 404, {"error": {"message": "Not Found", "code": 2100}}
                if method == "GET" and len(parts) == 2:
                    return 200, {"incident": incident.json()}
                if method == "GET" and parts[2:] == ["alerts"]:
                    limit = int((query.get("limit") or ["25"])[0])
                    offset = int((query.get("offset") or ["0"])[0])
                    alerts = [incident.alert_json(n, k) for n, k in enumerate(incident.alerts)]
                    page = alerts[offset : offset + limit]
                    more = offset + limit < len(alerts)
                    return 200, {"alerts": page, "limit": limit, "offset": offset, "more": more}
                if method == "POST" and parts[2:] == ["notes"]:
                    content = str((body or {}).get("note", {}).get("content", ""))
                    self.notes.append((incident.id, headers.get("From", ""), content))
                    return 201, {"note": {"id": f"PN{len(self.notes):05d}", "content": content}}
            if method == "GET" and parts == ["oncalls"]:
                policies = query.get("escalation_policy_ids[]", [])
                return 200, {"oncalls": self._oncalls(policies), "limit": 100, "more": False}
            if method == "GET" and len(parts) == 2 and parts[0] == "services":
                policy = self.services.get(parts[1])
                if policy is None:
                    return 404, {"error": {"message": "Not Found", "code": 2100}}
                ep = _ref("escalation_policy", policy, "Escalation policy")
                return 200, {
                    "service": {**_ref("service", parts[1], "svc"), "escalation_policy": ep}
                }
        return 404, {"error": {"message": "Not Found", "code": 2100}}

    def _oncalls(self, policies: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for policy in policies:
            for i, (name, level) in enumerate(self.oncall.get(policy, [])):
                out.append(
                    {
                        "escalation_policy": _ref("escalation_policy", policy, "Policy"),
                        "escalation_level": level,
                        "schedule": None,
                        "user": _ref("user", f"PU{i:05d}", name),
                        "start": None,
                        "end": None,
                    }
                )
        return out

    # webhooks v3 -----------------------------------------------------------------------------

    def webhook(
        self,
        event_type: str,
        incident_key: str,
        *,
        agent: tuple[str, str] = ("PLH1HKV", "Ann Example"),
        note: str = "",
        assignees: Sequence[tuple[str, str]] = (),
        event_id: str | None = None,
    ) -> bytes:
        """The body PagerDuty would send about the fake incident of ``incident_key`` (its
        status follows ``incident.acknowledged``/``resolved``/``reassigned`` first)."""
        incident = self.incident(incident_key)
        with self._lock:
            if event_type == "incident.acknowledged":
                incident.status = "acknowledged"
            elif event_type == "incident.resolved":
                incident.status = "resolved"
            elif event_type == "incident.reassigned" and assignees:
                incident.assignees = list(assignees)
            data = incident.json()
        if event_type == "incident.annotated":
            data = incident.note(note)
        return webhook_body(event_type, data, agent=agent, event_id=event_id)


def webhook_body(
    event_type: str,
    data: dict[str, Any],
    *,
    agent: tuple[str, str] | None = ("PLH1HKV", "Ann Example"),
    event_id: str | None = None,
) -> bytes:
    event = {
        "id": event_id or f"01{hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:24]}",
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "agent": _ref("user", *agent) if agent is not None else None,
        "client": None,
        "data": data,
    }
    return json.dumps({"event": event}).encode()


def signature(body: bytes, *secrets: str) -> str:
    """``X-PagerDuty-Signature``: one ``v1=`` per secret (several while a secret rotates)."""
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


def webhook_headers(body: bytes, *secrets: str, webhook_id: str = "") -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PagerDuty-Webhook/V3.0",
        "X-Webhook-Subscription": "PSUB123",
    }
    if secrets:
        headers["X-PagerDuty-Signature"] = signature(body, *secrets)
    if webhook_id:
        headers["X-Webhook-Id"] = webhook_id
    return headers


def _invalid(body: dict[str, Any], routing_key: str, action: str, dedup: Any) -> list[str]:
    errors = []
    if len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or invalid"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary:
            errors.append("'payload.summary' is missing or blank")
        elif len(summary) > 1024:
            errors.append("'payload.summary' is too long (at most 1024 characters)")
        if not isinstance(payload.get("source"), str) or not payload.get("source"):
            errors.append("'payload.source' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            errors.append(
                "'payload.severity' is invalid (must be critical, error, warning or info)"
            )
        for link in body.get("links", []) or []:
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                errors.append("'links' entries need an 'href'")
    return errors


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hangs up or refuses the certificate is not the fake's problem


class _Handler(FaultyHandler):
    server_version = "nginx"
    protocol_version = "HTTP/1.1"
    fake: FakePagerDuty

    def setup(self) -> None:
        self.fake = self.server.fake  # type: ignore[attr-defined]
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with self.fake._lock:
            self.fake.requests.append((method, self.path))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, {"status": "invalid event", "message": "Malformed JSON"})
            return
        if method == "POST" and url.path == "/v2/enqueue":
            status, answer, headers = self.fake.enqueue(body)
            self._send(status, answer, headers)
            return
        status, answer = self.fake.rest(method, url.path, parse_qs(url.query), self.headers, body)
        self._send(status, answer)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
