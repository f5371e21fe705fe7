"""A loopback Slack: the Web API the bot calls, and Slack's signed requests to the bot.

:class:`FakeSlack` serves ``/api/<method>`` on 127.0.0.1 the way Slack does: a bearer token (or
a ``token`` argument) is required, arguments arrive as JSON, form or query, required arguments
are checked, Block Kit limits are enforced (``invalid_blocks``, ``msg_too_long``), answers
carry ``ts``/``channel``/``message``, and every call is recorded. It can enforce Slack's rate
limits (``chat.postMessage`` per channel, a Tier 3 bucket for ``chat.update``) with HTTP 429 and
``Retry-After``, hold a method until a test releases it, fail the next call of a method, accept
posts to ``response_url`` (``/respond/<id>``), serve Socket Mode (``apps.connections.open``
and a WebSocket) and take file uploads as ``files_upload_v2`` makes them
(``files.getUploadURLExternal`` answers an upload URL on the fake itself, the bytes are POSTed
there, ``files.completeUploadExternal`` shares them in a channel or thread: :meth:`uploads`;
``missing_scopes`` makes the file methods answer ``missing_scope`` as Slack does). It runs in
the test's event loop (:meth:`start`) or in a thread of its own
(:meth:`start_in_thread`, for benchmarks).

:class:`SignedSlack` sends requests to the bot exactly as Slack does: ``X-Slack-Signature`` is
``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret. Payloads come
from the recorded templates in ``tests/fixtures/slack/payloads/`` (:func:`payload`).

:func:`slack_bot` runs the bot those tests talk to: a real ``Runtime`` on a SQLite file,
``create_app`` plus the Slack router served by uvicorn on 127.0.0.1, ``build_slack`` pointed at a
:class:`FakeSlack`, and an outbox worker the test drives.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
import yaml
from aiohttp import WSMsgType, web
from sqlalchemy import select

from bot.operations import Operations
from bot.outbox import OutboxWorker
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.server import create_app
from bot.settings import RateLimit, load_settings
from bot.store.repo import AUDIT, CARD_REFS, INCIDENTS
from bot.wiring import Runtime
from integrations.slack import SlackIntegration, load_slack_settings
from tests.builders import alert
from tests.fakes.faults import FaultSwitch
from tests.fakes.faults import middleware as fault_middleware

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "slack" / "payloads"
BOT_TOKEN = "xoxb-1111111111-2222222222-FAKEfakeFAKEfakeFAKEfake"
APP_TOKEN = "xapp-1-A0BOT-3333333333-fakefakefakefakefakefake"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM_ID, TEAM = "T0ACME001", "Acme"
BOT_USER_ID, BOT_ID, BOT_NAME = "U0BOT0001", "B0BOT0001", "incident-bot"
CHANNEL = "C0INCIDENT"

MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS = 50, 100
MAX_TEXT = 40_000
TEXTS = ("mrkdwn", "plain_text")


# Block Kit validation --------------------------------------------------------------------------


def _text_problem(obj: Any, where: str, limit: int, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in kinds or "text" not in obj:
        return [f"must be a text object of type {'/'.join(kinds)} [json-pointer:{where}]"]
    if not isinstance(obj["text"], str) or not obj["text"]:
        return [f"must be a non-empty string [json-pointer:{where}/text]"]
    if len(obj["text"]) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict):
        return [f"must be an object [json-pointer:{where}]"]
    kind = element.get("type")
    found: list[str] = []
    if kind == "button":
        found += _text_problem(element.get("text"), f"{where}/text", 75, ("plain_text",))
        if len(str(element.get("value", ""))) > 2000 or len(str(element.get("url", ""))) > 3000:
            found.append(f"value or url too long [json-pointer:{where}]")
    elif kind not in ("static_select", "plain_text_input", "mrkdwn", "plain_text", "image"):
        found.append(f"unsupported element type {kind!r} [json-pointer:{where}]")
    if len(str(element.get("action_id", ""))) > 255:
        found.append(f"action_id too long [json-pointer:{where}/action_id]")
    return found


def block_problems(blocks: Any, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """What Slack would refuse in ``blocks`` (empty when they are valid)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array [json-pointer:/blocks]"]
    if len(blocks) > max_blocks:
        return [f"no more than {max_blocks} items allowed [json-pointer:/blocks]"]
    found: list[str] = []
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        if len(str(block.get("block_id", "")) if isinstance(block, dict) else "") > 255:
            found.append(f"block_id too long [json-pointer:{where}/block_id]")
        if kind == "header":
            found += _text_problem(block.get("text"), f"{where}/text", 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                found.append(f"section needs text or fields [json-pointer:{where}]")
            if "text" in block:
                found += _text_problem(block["text"], f"{where}/text", 3000, TEXTS)
            for j, item in enumerate(block.get("fields", [])[:11]):
                found += _text_problem(item, f"{where}/fields/{j}", 2000, TEXTS)
            if len(block.get("fields", [])) > 10:
                found.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10:
                found.append(f"context needs 1 to 10 elements [json-pointer:{where}/elements]")
            for j, item in enumerate(elements):
                found += _text_problem(item, f"{where}/elements/{j}", 3000, TEXTS)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                found.append(f"actions needs 1 to 25 elements [json-pointer:{where}/elements]")
            for j, item in enumerate(elements):
                found += _element_problems(item, f"{where}/elements/{j}")
        elif kind == "input":
            found += _text_problem(block.get("label"), f"{where}/label", 2000, ("plain_text",))
            found += _element_problems(block.get("element"), f"{where}/element")
        elif kind != "divider":
            found.append(f"unsupported block type {kind!r} [json-pointer:{where}]")
    return found


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict) or view.get("type") != "modal":
        return ["view must be a modal [json-pointer:/view]"]
    found = []
    for key in ("title", "submit", "close"):
        if key in view or key == "title":
            found += _text_problem(view.get(key), f"/view/{key}", 24, ("plain_text",))
    if len(str(view.get("private_metadata", ""))) > 3000:
        found.append("private_metadata too long [json-pointer:/view/private_metadata]")
    return found + block_problems(view.get("blocks"), MAX_VIEW_BLOCKS)


# rate limits -----------------------------------------------------------------------------------


class Bucket:
    """Slack's budget for one method (and channel): ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, now: Callable[[], float]) -> None:
        self.rate, self.burst, self._now = rate, burst, now
        self._tokens, self._stamp = float(burst), now()

    def take(self) -> float:
        """0 when allowed, else the seconds to wait (what Retry-After says, rounded up)."""
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float
    burst: int


# the server ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    args: dict[str, Any]
    status: int
    error: str
    at: float
    authorization: str


@dataclass
class FakeSlack:
    token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    post_limit: Limit | None = None  # chat.postMessage, per channel (Slack: about 1/s)
    update_limit: Limit | None = None  # chat.update, per workspace (Tier 3: about 50/min)
    clock: Callable[[], float] = time.monotonic
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    deactivated: set[str] = field(default_factory=set)  # users conversations.open refuses
    directs: set[str] = field(default_factory=set)  # DM channels opened so far
    failures: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)  # 429s per method
    faults: FaultSwitch = field(default_factory=FaultSwitch)  # on /api/ (tests.fakes.faults)
    # files_upload_v2: files by id (getUploadURLExternal, the upload URL, completeUploadExternal)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing_scopes: set[str] = field(default_factory=set)  # e.g. {"files:write"}
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    _gates: dict[str, asyncio.Event] = field(default_factory=dict)
    _held: Counter[str] = field(default_factory=Counter)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    _port: int = 0
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    # addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` is set to (with the trailing ``/api/``)."""
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/respond/{name}"

    # life ------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[fault_middleware(self.faults, "/api/")])
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        return app

    async def start(self) -> FakeSlack:
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self._app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        for gate in self._gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> FakeSlack:
        """Serve from a thread with its own event loop (so the bot's loop is not shared)."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-slack", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop_thread(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    # test controls ---------------------------------------------------------------------------

    def hold(self, method: str) -> None:
        """Calls of ``method`` wait (unanswered) until :meth:`release`."""
        self._gates[method] = asyncio.Event()

    def release(self, method: str) -> None:
        gate = self._gates.pop(method, None)
        if gate is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(gate.set)

    def held(self, method: str) -> int:
        """How many calls of ``method`` are waiting at the gate now."""
        return self._held[method]

    def fail_next(self, method: str, error: str, status: int = 200) -> None:
        """The next call of ``method`` answers ``{"ok": false, "error": error}`` with ``status``."""
        self.failures.setdefault(method, deque()).append((status, error))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and not c.error]

    async def wait_for(self, check: Callable[[], bool], seconds: float = 5.0) -> None:
        """Until ``check()`` holds (the bot works after it has acknowledged)."""
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, "the expected Slack calls did not arrive in time"
            await asyncio.sleep(0.005)

    # the Web API -----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        kind = request.content_type
        if raw and kind == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                return self._answer(method, {}, "", 200, "invalid_json")
            if not isinstance(body, dict):
                return self._answer(method, {}, "", 200, "invalid_json")
            args.update(body)
        elif raw:
            args.update(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
            for key in ("blocks", "view", "metadata"):
                if isinstance(args.get(key), str):
                    try:
                        args[key] = json.loads(args[key])
                    except ValueError:
                        return self._answer(method, args, "", 200, "invalid_arguments")
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ") if authorization else args.get("token", "")
        expected = self.app_token if method == "apps.connections.open" else self.token
        if not token:
            return self._answer(method, args, authorization, 200, "not_authed")
        if not hmac.compare_digest(str(token), expected):
            return self._answer(method, args, authorization, 200, "invalid_auth")
        gate = self._gates.get(method)
        if gate is not None:
            self._held[method] += 1
            try:
                await gate.wait()
            finally:
                self._held[method] -= 1
        queued = self.failures.get(method)
        if queued:
            status, error = queued.popleft()
            return self._answer(method, args, authorization, status, error)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._answer(method, args, authorization, 200, "unknown_method")
        result = handler(args)
        if isinstance(result, float):  # rate-limited: seconds to wait
            self.rejected[method] += 1
            retry = str(max(1, math.ceil(result)))
            return self._answer(method, args, authorization, 429, "ratelimited", retry=retry)
        if isinstance(result, str):  # "error_code" or "error_code|message"
            return self._answer(method, args, authorization, 200, result)
        if isinstance(result, tuple):  # (error code, more fields of the error body)
            return self._answer(method, args, authorization, 200, result[0], extra=result[1])
        return self._answer(method, args, authorization, 200, "", result)

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        authorization: str,
        status: int,
        error: str,
        data: dict[str, Any] | None = None,
        retry: str = "",
        extra: dict[str, Any] | None = None,
    ) -> web.Response:
        error, _, message = error.partition("|")
        self.calls.append(Call(method, args, status, error, self.clock(), authorization))
        if error:
            body: dict[str, Any] = {"ok": False, "error": error, **(extra or {})}
            if message:
                body["response_metadata"] = {"messages": [f"[ERROR] {message}"]}
        else:
            body = {"ok": True, **(data or {})}
        headers = {"Retry-After": retry} if retry else {}
        if status >= 500:
            return web.Response(status=status, text="upstream trouble", headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def _limited(self, method: str, channel: str) -> float:
        limit = self.post_limit if method == "chat.postMessage" else self.update_limit
        if limit is None:
            return 0.0
        key = (method, channel if method == "chat.postMessage" else "*")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(limit.rate, limit.burst, self.clock)
        return bucket.take()

    def _message_problem(self, args: dict[str, Any]) -> str:
        if not args.get("channel"):
            return "channel_not_found"
        if not any(args.get(k) for k in ("text", "blocks", "attachments")):
            return "no_text"
        if len(str(args.get("text", ""))) > MAX_TEXT:
            return "msg_too_long"
        if "blocks" in args:
            problems = block_problems(args["blocks"])
            if problems:
                return "invalid_blocks|" + problems[0]
        metadata = args.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and metadata.get("event_type")
            and "event_payload" in metadata
        ):
            return "invalid_metadata_format"
        return ""

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://acme.slack.com/",
            "team": TEAM,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _next_ts(self) -> str:
        return f"{1_790_000_000 + next(self._ts)}.{next(self._ts) % 1_000_000:06d}"

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any] | str | float:
        problem = self._message_problem(args)
        if problem:
            return problem
        wait = self._limited("chat.postMessage", str(args["channel"]))
        if wait:
            return wait
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": args.get("blocks", []),
            "team": TEAM_ID,
        }
        for key in ("thread_ts", "metadata"):
            if key in args:
                message[key] = args[key]
        self.messages[(str(args["channel"]), ts)] = message
        return {"channel": args["channel"], "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any] | str | float:
        problem = self._message_problem(args)
        if problem:
            return problem
        key = (str(args["channel"]), str(args.get("ts", "")))
        if key not in self.messages:
            return "message_not_found"
        wait = self._limited("chat.update", key[0])
        if wait:
            return wait
        message = self.messages[key]
        message.update(text=args.get("text", ""), blocks=args.get("blocks", []), edited=True)
        return {"channel": key[0], "ts": key[1], "text": message["text"], "message": message}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any] | str:
        if not args.get("user"):
            return "user_not_found"
        problem = self._message_problem(args)
        return problem or {"message_ts": self._next_ts()}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any] | str:
        if not args.get("trigger_id"):
            return "invalid_arguments|missing required field: trigger_id"
        if args["trigger_id"] == "expired":
            return "expired_trigger_id"
        problems = view_problems(args.get("view"))
        if problems:
            return "invalid_arguments|" + problems[0]
        view_id = f"V{next(self._ts):08d}"
        view = {**args["view"], "id": view_id, "hash": f"{view_id}-1", "state": {"values": {}}}
        self.views[view_id] = view
        return {"view": view}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any] | str:
        current = self.views.get(str(args.get("view_id", "")))
        if current is None:
            return "not_found"
        if args.get("hash") and args["hash"] != current["hash"]:
            return "hash_conflict"
        problems = view_problems(args.get("view"))
        if problems:
            return "invalid_arguments|" + problems[0]
        version = int(current["hash"].rsplit("-", 1)[1]) + 1
        view = {**args["view"], "id": current["id"], "hash": f"{current['id']}-{version}"}
        self.views[current["id"]] = view
        return {"view": view}

    def _m_usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        with_users = str(args.get("include_users", "")).lower() in ("1", "true")
        groups = []
        for group_id, users in self.usergroups.items():
            group: dict[str, Any] = {"id": group_id, "team_id": TEAM_ID, "handle": group_id}
            if with_users:
                group["users"] = list(users)
            groups.append(group)
        return {"usergroups": groups}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any] | str:
        user = str(args.get("user", ""))
        if not user:
            return "user_not_found"
        return {"user": {"id": user, "team_id": TEAM_ID, "name": user.lower(), "is_bot": False}}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any] | str:
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            return "users_list_not_supplied"
        if len(users) > 8:
            return "too_many_users"
        if any(u in self.deactivated for u in users):
            return "user_disabled"
        channel = "D" + "".join(sorted(users))[:10].upper()
        already = channel in self.directs
        self.directs.add(channel)
        return {"channel": {"id": channel}, "already_open": already}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self._port}/socket"}

    # files_upload_v2 ---------------------------------------------------------------------------

    def uploads(self, channel: str = "", thread_ts: str = "") -> list[dict[str, Any]]:
        """Files shared (completed), optionally only those in one channel or thread."""
        return [
            f
            for f in self.files.values()
            if f.get("shared")
            and (not channel or f["channel"] == channel)
            and (not thread_ts or f.get("thread_ts") == thread_ts)
        ]

    def _no_file_scope(self) -> tuple[str, dict[str, Any]] | None:
        if "files:write" not in self.missing_scopes:
            return None
        return "missing_scope", {"needed": "files:write", "provided": "chat:write,commands"}

    def _m_files_getUploadURLExternal(
        self, args: dict[str, Any]
    ) -> dict[str, Any] | str | tuple[str, dict[str, Any]]:
        refused = self._no_file_scope()
        if refused is not None:
            return refused
        if not args.get("filename"):
            return "invalid_arguments|missing required field: filename"
        length = str(args.get("length", ""))
        if not length.isdigit() or int(length) < 1:
            return "invalid_arguments|length must be a positive integer"
        file_id = f"F{next(self._ts):010d}"
        self.files[file_id] = {
            "id": file_id,
            "name": args["filename"],
            "length": int(length),
            "alt_txt": args.get("alt_txt", ""),
            "data": None,
        }
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the file's bytes, raw or as a multipart form (as Slack takes them)."""
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        queued = self.failures.get("upload")  # fail_next("upload", "", status=503)
        if queued:
            status, _ = queued.popleft()
            return web.Response(status=status, text="upload refused")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(iter(form.values()), b"")
            data = part.file.read() if isinstance(part, web.FileField) else str(part).encode()
        else:
            data = await request.read()
        found["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    def _m_files_completeUploadExternal(
        self, args: dict[str, Any]
    ) -> dict[str, Any] | str | tuple[str, dict[str, Any]]:
        refused = self._no_file_scope()
        if refused is not None:
            return refused
        try:
            items = json.loads(str(args.get("files", "")))
        except ValueError:
            return "invalid_arguments|files must be a JSON array"
        if not isinstance(items, list) or not items:
            return "invalid_arguments|files must be a non-empty JSON array"
        channel, thread_ts = str(args.get("channel_id", "")), str(args.get("thread_ts", ""))
        if thread_ts and not channel:
            return "invalid_arguments|thread_ts needs channel_id"
        if thread_ts and (channel, thread_ts) not in self.messages:
            return "invalid_thread_ts"
        done = []
        for item in items:
            found = self.files.get(str(item.get("id", "")) if isinstance(item, dict) else "")
            if found is None or found["data"] is None:
                return "file_not_found"
            if len(found["data"]) != found["length"]:
                return "file_upload_size_mismatch"
            found.update(
                title=item.get("title") or found["name"],
                channel=channel,
                thread_ts=thread_ts,
                initial_comment=args.get("initial_comment", ""),
                shared=True,
            )
            done.append(
                {
                    "id": found["id"],
                    "name": found["name"],
                    "title": found["title"],
                    "mimetype": "image/png" if found["name"].endswith(".png") else "",
                    "size": found["length"],
                }
            )
        return {"files": done}

    # response_url and Socket Mode ------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.setdefault(request.match_info["name"], []).append(body)
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                data = json.loads(message.data)
                future = self._acks.pop(str(data.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(data)
        self._sockets.remove(ws)
        return ws

    async def envelope(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver a Socket Mode envelope to the connected bot; answer its acknowledgement."""
        await self.wait_for(lambda: bool(self._sockets))
        envelope_id = f"env-{next(self._ts)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self._sockets[0].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        async with asyncio.timeout(5):
            return await future


# Slack's requests to the bot -------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def payload(name: str, **values: Any) -> dict[str, Any]:
    """A recorded payload from ``tests/fixtures/slack/payloads/<name>.json`` with ``{{key}}``
    placeholders filled in."""
    text = (PAYLOADS / f"{name}.json").read_text()
    for key, value in values.items():
        shown = json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)
        text = text.replace("{{" + key + "}}", shown)
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass
class SignedSlack:
    """Sends requests to the bot's ``/slack/events`` as Slack does, signed."""

    client: httpx.AsyncClient
    secret: str = SIGNING_SECRET
    path: str = "/slack/events"
    clock: Callable[[], float] = time.time

    async def send(
        self,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        secret: str | None = None,
        age: float = 0.0,
    ) -> httpx.Response:
        timestamp = str(int(self.clock() - age))
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(secret or self.secret, timestamp, body),
            **(headers or {}),
        }
        return await self.client.post(self.path, content=body, headers=signed)

    async def interaction(self, data: dict[str, Any], **options: Any) -> httpx.Response:
        """``block_actions`` / ``view_submission``: a form with ``payload=<json>``."""
        body = urlencode({"payload": json.dumps(data)}).encode()
        return await self.send(body, "application/x-www-form-urlencoded", **options)

    async def command(self, fields: dict[str, Any], **options: Any) -> httpx.Response:
        body = urlencode(fields).encode()
        return await self.send(body, "application/x-www-form-urlencoded", **options)

    async def event(self, data: dict[str, Any], retry: int | None = None) -> httpx.Response:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.send(
            json.dumps(data).encode(), "application/json", headers if retry else None
        )


# a bot wired to the fake -----------------------------------------------------------------------


@dataclass
class SlackBot:
    """The real runtime, Slack integration and HTTP server, talking to a :class:`FakeSlack`."""

    fake: FakeSlack
    runtime: Runtime
    operations: Operations
    integration: SlackIntegration
    outbox: OutboxWorker
    policy: IngestPolicy
    slack: SignedSlack
    url: str

    def open_incidents(self, n: int = 1, **alert_fields: Any) -> list[int]:
        """``n`` new incidents (services svc-0 …) whose cards go to the Slack channel."""
        now = self.runtime.clock.now()
        alerts = [alert(now, service=f"svc-{i}", **alert_fields) for i in range(n)]
        with self.runtime.engine.begin() as conn:
            return ingest(conn, alerts, now, self.policy).created

    def audit(self) -> list[tuple[str, str, str, int | None]]:
        """(actor, action, result, incident id) of every audited command, oldest first."""
        with self.runtime.engine.connect() as conn:
            rows = conn.execute(select(AUDIT).order_by(AUDIT.c.id))
            return [(r.actor, r.action, r.result, r.incident_id) for r in rows]

    def state(self, incident_id: int) -> str:
        with self.runtime.engine.connect() as conn:
            query = select(INCIDENTS.c.state).where(INCIDENTS.c.id == incident_id)
            return str(conn.execute(query).scalar_one())

    def card_ts(self, incident_id: int) -> str:
        """The Slack ``ts`` of an incident's card (after the outbox posted it)."""
        with self.runtime.engine.connect() as conn:
            query = select(CARD_REFS.c.message_id).where(
                CARD_REFS.c.incident_id == incident_id, CARD_REFS.c.surface == "slack"
            )
            return str(conn.execute(query).scalar_one())

    async def settle(self) -> None:
        """Let acknowledged work finish, then deliver what it queued."""
        await self.integration.inflight.drain()
        await self.outbox.deliver_due()


@asynccontextmanager
async def slack_bot(
    folder: Path,
    clock: Any,
    roles: dict[str, Any] | None = None,
    fake: FakeSlack | None = None,
    rate_limits: dict[str, RateLimit] | None = None,
    digest_after: int | None = None,
    runtime_options: dict[str, Any] | None = None,
    **slack_settings: Any,
) -> AsyncIterator[SlackBot]:
    """A bot on a SQLite file in ``folder``, serving HTTP on 127.0.0.1, Slack faked."""
    fake = await (fake or FakeSlack()).start()
    roles_file = None
    if roles is not None:
        roles_file = folder / "roles.yaml"
        roles_file.write_text(yaml.safe_dump(roles))
    unlimited = RateLimit(rate=10_000, burst=10_000)
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'bot.db'}",
        local_events_path=folder / "events.db",
        generator=False,
        roles_file=roles_file,
        # Slack's own pacing only where a test asks for it
        outbox_rate_limits=rate_limits or {"slack": unlimited, "slack.update": unlimited},
    )
    config = load_slack_settings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=fake.api_url,
        default_channel=CHANNEL,
        **({"digest_after": digest_after} if digest_after else {}),
        **slack_settings,
    )
    # the runtime wires Slack itself: surface, route, buckets, digest, /slack/events
    runtime = Runtime(settings, clock=clock, slack=config, **(runtime_options or {}))
    await runtime.connect(attempts=1)
    assert runtime.slack is not None
    integration = runtime.slack
    operations = runtime.operations
    outbox = runtime.outbox
    router = runtime.router
    app = create_app(runtime)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the bot's HTTP server did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    await integration.start()
    url = f"http://127.0.0.1:{port}"
    policy = IngestPolicy(
        router=router,
        flap_window=timedelta(minutes=30),
        card_refresh=timedelta(seconds=60),
        realert=timedelta(0),
    )
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            yield SlackBot(
                fake, runtime, operations, integration, outbox, policy, SignedSlack(client), url
            )
        finally:
            await integration.stop()
            server.should_exit = True
            await serving
            await fake.stop()
            runtime.engine.dispose()
            if runtime.event_store is not None:
                runtime.event_store.close()
