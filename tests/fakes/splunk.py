"""A loopback fake of splunkd's REST API, as splunk-sdk uses it, answering with real results.

Queries run through the local SPL engine (``integrations.local``) over events the test seeds
with :meth:`FakeSplunk.add_events`, over the ``earliest_time``/``latest_time`` the client sent.
Endpoints, under ``/services`` and ``/servicesNS/<owner>/<app>``: ``auth/login``,
``server/info``, ``search/v2/jobs`` (create), ``…/jobs/{sid}``, ``…/jobs/{sid}/results``,
``…/jobs/{sid}/control`` and ``search/v2/jobs/export``. Every answer says
``Connection: close``; requests without a valid ``Bearer`` token or ``Splunk`` session key get
Splunk's 401.

Knobs: :meth:`fail_next` (answer the next requests with a status), ``delay`` (a search takes
this long), :meth:`fatal` (the next search fails with a message), ``index_clock`` (indexing lag
switched on: a search sees only events whose index time, ``Event.indexed``, has passed by this
clock, as splunkd answers only with what is already indexed). Searches honour the
``index_earliest``/``index_latest`` job parameters, and event rows carry ``_indextime`` (whole
epoch seconds), ``_cd`` and ``_bkt`` as splunkd's do. ``max_jobs`` (None: no limit) is
splunkd's concurrent-search quota: while that many searches run, a new export or job is refused
with splunkd's 503 and its message (``quota.scope``: the user's role quota or the instance's
limit; :mod:`tests.fakes.splunk_quota`). Records: ``requests``, ``logins``, ``cancelled`` (job
ids), ``exports`` (how each export ended), ``max_concurrent_seen``, and ``ledger``: every
search's event-time span, index-time bounds and rows, with totals a bench can read and reset.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from bot.domain.hits import SearchQuery
from detectors.spl.hits import format_time
from integrations.local import Event, EventStore, LocalSearchBackend, SplError, parse
from tests.fakes.faults import FaultSwitch, FaultyHandler
from tests.fakes.splunk_quota import (
    QUOTA_LEVEL,
    QUOTA_STATUS,
    SearchLedger,
    SearchQuota,
    search_record,
)

ATOM = 'xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest"'
_NAMESPACED = re.compile(r"^/services(?:NS/([^/]+)/([^/]+))?(/.*)$")
_JOB = re.compile(r"^/search/(?:v2/)?jobs/([^/]+)(?:/(results|control))?$")
_CHUNK_ROWS = 500


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # without the /services or /servicesNS/<owner>/<app> prefix
    namespace: str  # "" or "<owner>/<app>"
    params: dict[str, str]
    authorization: str


@dataclass(slots=True)
class ExportRecord:
    query: str
    rows: int  # final rows the search produced
    written: int = 0  # final rows handed to the socket so far
    abandoned: bool = False  # the client went away before the end


@dataclass(slots=True)
class _Job:
    sid: str
    query: str
    owner: str
    app: str
    rows: list[dict[str, str]]
    ready_at: float
    messages: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False


class FakeSplunk:
    """Start with ``with FakeSplunk(...) as fake:``; ``fake.port`` is where it listens."""

    def __init__(
        self,
        *,
        token: str = "fake-bearer-token",
        username: str = "admin",
        password: str = "fake-password",
        version: str = "9.3.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.token = token
        self.username = username
        self.password = password
        self.version = version
        self.host = "127.0.0.1"
        self.scheme = "https" if tls else "http"
        self.delay = 0.0
        self.index_clock: Callable[[], datetime] | None = None
        self.store = EventStore(":memory:")
        self.requests: list[Request] = []
        self.logins = 0
        self.cancelled: list[str] = []
        self.exports: list[ExportRecord] = []
        self.max_concurrent_seen = 0
        self.ledger = SearchLedger()
        self.quota = SearchQuota()
        self._lock = threading.Lock()
        self.faults = FaultSwitch()  # tests.fakes.faults: 5xx, 429, hang, reset for a while
        self._sessions: set[str] = set()
        self._failures: deque[tuple[int, float | None]] = deque()
        self._fatal: deque[tuple[str, str]] = deque()
        self._jobs: dict[str, _Job] = {}
        self._held = 0  # searches admitted and not yet a job, or exporting
        self._closing = threading.Event()
        self._server = _Server((self.host, 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._server.faults = self.faults  # type: ignore[attr-defined]
        if tls is not None:
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # life ------------------------------------------------------------------------------------

    def __enter__(self) -> FakeSplunk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.store.close()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def max_jobs(self) -> int | None:
        """The concurrent-search quota (None: unlimited)."""
        return self.quota.max_jobs

    @max_jobs.setter
    def max_jobs(self, value: int | None) -> None:
        self.quota.max_jobs = value

    # knobs -----------------------------------------------------------------------------------

    def add_events(self, events: Iterable[Event]) -> int:
        return self.store.add(events)

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests (logins aside) with ``status``."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def fatal(self, text: str, level: str = "FATAL") -> None:
        """The next search fails with this message (in the export stream, or on the job)."""
        with self._lock:
            self._fatal.append((level, text))

    def searches(self) -> list[Request]:
        """The requests that started a search (export or job creation)."""
        return [
            r
            for r in self.requests
            if r.method == "POST" and re.fullmatch(r"/search/(v2/)?jobs(/export)?", r.path)
        ]

    # what the handler uses -------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_failure(self) -> tuple[int, float | None] | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _next_fatal(self) -> tuple[str, str] | None:
        with self._lock:
            return self._fatal.popleft() if self._fatal else None

    def _login(self, username: str, password: str) -> str | None:
        with self._lock:
            self.logins += 1
            if username != self.username or password != self.password:
                return None
            key = secrets.token_hex(16)
            self._sessions.add(key)
            return key

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return secrets.compare_digest(value, self.token)
        if scheme == "Splunk":
            with self._lock:
                return value in self._sessions
        return False

    def _admit(self) -> str | None:
        """Hold a place for a new search; splunkd's refusal instead when the quota is full."""
        with self._lock:
            now = time.monotonic()
            running = self._held + sum(
                1 for j in self._jobs.values() if not j.cancelled and j.ready_at > now
            )
            refusal = self.quota.refusal(running)
            if refusal is not None:
                self.ledger.refuse()
                return refusal
            self._held += 1
            self.max_concurrent_seen = max(self.max_concurrent_seen, running + 1)
            return None

    def _release(self) -> None:
        with self._lock:
            self._held -= 1

    def _execute(
        self, params: dict[str, str], kind: Literal["export", "job"] = "export"
    ) -> tuple[list[dict[str, str]], bool]:
        """Final rows of the search in ``params`` and whether it aggregates; raises SplError."""
        text = params.get("search", "").strip()
        if text.lower().startswith("search "):
            text = text[len("search ") :]
        now = datetime.now(UTC)
        latest = _moment(params.get("latest_time"), now)
        earliest = _moment(params.get("earliest_time"), datetime.fromtimestamp(0, UTC))
        if re.fullmatch(r"\|\s*makeresults(\s+count=1)?", text):
            return [{"_time": format_time(latest.timestamp())}], False
        transforming = parse(text).is_transforming
        index_earliest = _moment(params.get("index_earliest"), None)
        index_latest = _moment(params.get("index_latest"), None)
        searchable: datetime | None = None
        if self.index_clock is not None:  # what is not indexed yet is not searchable
            searchable = self.index_clock()
            index_latest = searchable if index_latest is None else min(index_latest, searchable)
        query = SearchQuery(
            text=text,
            earliest=earliest,
            latest=latest,
            max_results=10**9,
            index_earliest=index_earliest,
            index_latest=index_latest,
        )
        hits = LocalSearchBackend(self.store).search_sync(query)
        rows = [_as_splunkd(dict(h.fields)) for h in hits]
        events = () if transforming else (row["_cd"] for row in rows if "_cd" in row)
        record = search_record(kind, params, len(rows), transforming, searchable)
        self.ledger.record(record, events)
        return rows, transforming

    def _create_job(self, params: dict[str, str], namespace: str) -> _Job:
        """Run the search of an admitted job (its place is released here, failed or not)."""
        try:
            rows, _ = self._execute(params, "job")
        except BaseException:
            self._release()
            raise
        owner, _, app = namespace.partition("/")
        with self._lock:
            self._held -= 1  # from now on the job itself counts while it runs
            sid = f"{int(time.time())}.{len(self._jobs) + 1}"
            job = _Job(
                sid=sid,
                query=params.get("search", ""),
                owner=self.username if not owner or owner == "nobody" else owner,
                app=app or "search",
                rows=rows,
                ready_at=time.monotonic() + self.delay,
            )
            self._jobs[sid] = job
        fatal = self._next_fatal()
        if fatal is not None:
            job.messages.append(fatal)
        return job

    def _job(self, sid: str) -> _Job | None:
        with self._lock:
            return self._jobs.get(sid)

    def _cancel(self, job: _Job) -> None:
        with self._lock:
            job.cancelled = True
            self.cancelled.append(job.sid)

    def _wait(self, seconds: float, conn: socket.socket) -> bool:
        """Wait ``seconds``; False as soon as the client hangs up (or the fake closes)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._closing.is_set():
                return False
            if isinstance(conn, ssl.SSLSocket):
                time.sleep(min(left, 0.02))
                continue
            ready, _, _ = select.select([conn], [], [], min(left, 0.02))
            if ready:
                try:
                    if not conn.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False
                time.sleep(min(left, 0.02))
        return True


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hangs up or refuses our certificate is not the fake's problem


class _Handler(FaultyHandler):
    server_version = "Splunkd"
    fake: FakeSplunk

    def setup(self) -> None:
        self.fake = self.server.fake  # type: ignore[attr-defined]
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # a refused handshake ends here, quietly
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # routing ---------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length).decode("utf-8")
            params.update(parse_qsl(body, keep_blank_values=True))
        found = _NAMESPACED.match(url.path)
        if found is None:
            return self._messages(404, "ERROR", f"Not Found: {url.path}")
        owner, app, path = found.groups()
        path = path.rstrip("/") or "/"
        namespace = f"{owner}/{app}" if owner else ""
        auth = self.headers.get("Authorization", "")
        self.fake._record(Request(method, path, namespace, params, auth))
        if path == "/auth/login" and method == "POST":
            return self._login(params)
        failure = self.fake._next_failure()
        if failure is not None:
            status, retry_after = failure
            extra = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            if status == 401:
                return self._messages(401, "WARN", "call not properly authenticated")
            return self._messages(status, "ERROR", self.responses[status][0], extra)
        if not self.fake._authorized(auth):
            return self._messages(401, "WARN", "call not properly authenticated")
        if path == "/server/info" and method == "GET":
            return self._server_info()
        if re.fullmatch(r"/search/(v2/)?jobs/export", path) and method == "POST":
            return self._export(params)
        if re.fullmatch(r"/search/(v2/)?jobs", path) and method == "POST":
            return self._create(params, namespace)
        job_path = _JOB.match(path)
        if job_path is not None:
            job = self.fake._job(job_path.group(1))
            if job is None or job.cancelled:
                return self._messages(404, "FATAL", f"Unknown sid: {job_path.group(1)}")
            action = job_path.group(2)
            if action is None and method == "GET":
                return self._job_entry(job)
            if action == "results":
                return self._results(job, params)
            if action == "control" and method == "POST":
                return self._control(job, params)
        return self._messages(404, "ERROR", f"Not Found: {path}")

    # endpoints -------------------------------------------------------------------------------

    def _login(self, params: dict[str, str]) -> None:
        key = self.fake._login(params.get("username", ""), params.get("password", ""))
        if key is None:
            return self._messages(401, "WARN", "Login failed")
        self._send(200, f"<response>\n  <sessionKey>{key}</sessionKey>\n</response>\n")

    def _server_info(self) -> None:
        content = _dict({"version": self.fake.version, "build": "fake", "serverName": "fake"})
        self._send(
            200,
            f'<?xml version="1.0" encoding="UTF-8"?>\n<feed {ATOM}>\n<title>server-info</title>\n'
            f"<entry><title>server-info</title>\n"
            f'<link href="/services/server/info/server-info" rel="alternate"/>\n'
            f'<content type="text/xml">{content}</content></entry>\n</feed>\n',
        )

    def _export(self, params: dict[str, str]) -> None:
        refusal = self.fake._admit()
        if refusal is not None:
            return self._json_messages(QUOTA_STATUS, QUOTA_LEVEL, refusal)
        try:
            rows, transforming = self.fake._execute(params)
        except SplError as exc:
            self.fake._release()
            return self._json_messages(400, "FATAL", f"Error in 'SearchParser': {exc}")
        except BaseException:
            self.fake._release()
            raise
        record = ExportRecord(query=params.get("search", ""), rows=len(rows))
        with self.fake._lock:
            self.fake.exports.append(record)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Connection", "close")
            self.end_headers()
            if self.fake.delay and not self.fake._wait(self.fake.delay, self.connection):
                record.abandoned = True
                return
            fatal = self.fake._next_fatal()
            if fatal is not None:
                line = {"messages": [{"type": "INFO", "text": "search started"}]}
                line["messages"].append({"type": fatal[0], "text": fatal[1]})
                self.wfile.write(json.dumps(line).encode() + b"\n")
                return
            if transforming:
                self._stream(rows, preview=True)
            self._stream(rows, preview=False, record=record)
        except (BrokenPipeError, ConnectionResetError):
            record.abandoned = True
        finally:
            self.fake._release()

    def _stream(
        self, rows: list[dict[str, str]], preview: bool, record: ExportRecord | None = None
    ) -> None:
        flag = "true" if preview else "false"
        for start in range(0, len(rows), _CHUNK_ROWS):
            chunk = rows[start : start + _CHUNK_ROWS]
            lines = [
                f'{{"preview":{flag},"offset":{start + i},'.encode()
                + (b'"lastrow":true,' if start + i == len(rows) - 1 and not preview else b"")
                + b'"result":'
                + json.dumps(row, separators=(",", ":")).encode()
                + b"}\n"
                for i, row in enumerate(chunk)
            ]
            self.wfile.write(b"".join(lines))
            if record is not None:
                record.written += len(chunk)

    def _create(self, params: dict[str, str], namespace: str) -> None:
        refusal = self.fake._admit()
        if refusal is not None:
            return self._messages(QUOTA_STATUS, QUOTA_LEVEL, refusal)
        try:
            job = self.fake._create_job(params, namespace)
        except SplError as exc:
            return self._messages(400, "FATAL", f"Error in 'SearchParser': {exc}")
        self._send(201, f"<response>\n  <sid>{job.sid}</sid>\n</response>\n")

    def _job_entry(self, job: _Job) -> None:
        done = time.monotonic() >= job.ready_at
        failed = done and any(level in ("FATAL", "ERROR") for level, _ in job.messages)
        state = "FAILED" if failed else "DONE" if done else "RUNNING"
        content: dict[str, Any] = {
            "sid": job.sid,
            "dispatchState": state,
            "isDone": "1" if done else "0",
            "isFailed": "1" if failed else "0",
            "doneProgress": "1.00000" if done else "0.50000",
            "resultCount": str(len(job.rows)) if done else "0",
        }
        if done and job.messages:
            grouped: dict[str, list[str]] = {}
            for level, text in job.messages:
                grouped.setdefault(level.lower(), []).append(text)
            content["messages"] = grouped
        content["eai:acl"] = {"app": job.app, "owner": job.owner, "sharing": "global"}
        link = f"/services/search/v2/jobs/{job.sid}"
        self._send(
            200,
            f'<?xml version="1.0" encoding="UTF-8"?>\n<entry {ATOM}>\n'
            f"<title>{escape(job.query)}</title>\n<id>{self.fake.url}{link}</id>\n"
            f'<link href="{link}" rel="alternate"/>\n'
            f'<link href="{link}/results" rel="results"/>\n'
            f'<link href="{link}/control" rel="control"/>\n'
            f"<author><name>{job.owner}</name></author>\n"
            f'<content type="text/xml">{_dict(content)}</content>\n</entry>\n',
        )

    def _results(self, job: _Job, params: dict[str, str]) -> None:
        if time.monotonic() < job.ready_at:
            self.send_response(204)
            self.send_header("Connection", "close")
            self.end_headers()
            return
        offset = int(params.get("offset") or 0)
        count = int(params.get("count") or 100)
        rows = job.rows[offset:] if count == 0 else job.rows[offset : offset + count]
        body = {"preview": False, "init_offset": offset, "messages": [], "results": rows}
        self._send(200, json.dumps(body, separators=(",", ":")), "application/json")

    def _control(self, job: _Job, params: dict[str, str]) -> None:
        if params.get("action") == "cancel":
            self.fake._cancel(job)
            return self._messages(200, "INFO", "Search job cancelled.")
        return self._messages(200, "INFO", f"{params.get('action')} done")

    # answers ---------------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: str,
        content_type: str = "text/xml; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _messages(
        self, status: int, level: str, text: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(
            status,
            '<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <messages>\n'
            f'    <msg type="{level}">{escape(text)}</msg>\n  </messages>\n</response>\n',
            headers=headers,
        )

    def _json_messages(self, status: int, level: str, text: str) -> None:
        body = json.dumps({"messages": [{"type": level, "text": text}]})
        self._send(status, body, "application/json; charset=UTF-8")


def _dict(values: dict[str, Any]) -> str:
    """An Atom ``s:dict`` of strings, lists of strings and nested dicts."""
    keys = []
    for name, value in values.items():
        if isinstance(value, dict):
            inner = _dict(value)
        elif isinstance(value, list):
            inner = "<s:list>" + "".join(f"<s:item>{escape(v)}</s:item>" for v in value)
            inner += "</s:list>"
        else:
            inner = escape(str(value))
        keys.append(f'<s:key name="{escape(name)}">{inner}</s:key>')
    return "<s:dict>" + "".join(keys) + "</s:dict>"


def _moment(value: str | None, default: datetime | None) -> Any:
    if not value:
        return default
    return datetime.fromtimestamp(float(value), UTC)


def _as_splunkd(row: dict[str, str]) -> dict[str, str]:
    """An event row with the fields splunkd adds: ``_indextime`` in whole seconds, ``_bkt``
    (the bucket) and ``_cd`` (bucket id and offset: with ``_bkt``, the event's identity)."""
    stamp = row.get("_indextime")
    if stamp is None or "_raw" not in row:
        return row
    seconds = int(float(stamp))
    bucket = seconds // 86_400
    offset = int.from_bytes(
        hashlib.blake2b(f"{row.get('_time')}\x00{row['_raw']}".encode(), digest_size=4).digest()
    )
    row["_indextime"] = str(seconds)
    row["_bkt"] = f"{row.get('index', 'main')}~{bucket}~6B1C0E4A-FAKE"
    row["_cd"] = f"{bucket}:{offset}"
    return row
