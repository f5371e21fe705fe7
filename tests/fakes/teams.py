"""A loopback Bot Connector (the service behind an activity's ``serviceUrl``) and Teams payloads.

:class:`FakeBotConnector` serves the calls a bot makes on 127.0.0.1:

* ``POST /v3/conversations`` (create a conversation),
* ``POST /v3/conversations/{id}/activities`` (a new message),
* ``POST /v3/conversations/{id}/activities/{activityId}`` (a reply in a thread),
* ``PUT /v3/conversations/{id}/activities/{activityId}`` (an update in place),

records each one with its ``Authorization`` header and when it came, answers 401 without a
bearer token (or, given ``accept``, without one of those tokens), and answers a queued failure
(429, 412, 502 … with ``Retry-After``) when a test asks for one. Its fault switch (``faults``)
fails every call for a while; :meth:`FakeBotConnector.arm` holds the next new message (or the
next update), so a test can kill a bot while its card post (or update) is in flight.
:func:`running_connector` runs one on a loop thread of its own, for a bot in another process.

:func:`teams_activity` loads a Teams payload from ``tests/fixtures/teams/activities/`` (shaped
like what Teams sends) and points it at the fake. :class:`StaticTokenProvider` stands in for
MSAL, and :func:`teams_bot` runs the bot with Teams wired in against the fake.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from azure.core.credentials_async import AsyncTokenCredential
from microsoft_agents.hosting.core import AccessTokenProviderBase, AgentAuthConfiguration
from pydantic import SecretStr

from bot.outbox import OutboxWorker
from bot.pipeline.ingest import IngestPolicy
from bot.pipeline.notify import Router
from bot.ports import Clock
from bot.server import create_app
from bot.settings import load_settings
from bot.wiring import Runtime
from integrations.teams import TeamsIntegration, TeamsSettings
from tests.fakes.faults import Fault, FaultSwitch
from tests.fakes.faults import middleware as fault_middleware

ACTIVITIES = Path(__file__).resolve().parent.parent / "fixtures" / "teams" / "activities"
APP_ID = "9d3a1f6e-4b2c-4e8d-a1f0-6c5b4a3d2e1f"  # the bot in the recorded activities
TENANT_ID = "5e1b7c9d-2f4a-4b6c-8d0e-1f3a5b7c9d0e"
CONNECTOR_TOKEN = "connector-token-for-tests"
PASSWORD = "app-password-never-used-with-a-token-provider"


@dataclass(frozen=True, slots=True)
class ConnectorCall:
    method: str
    kind: str  # create | post | reply | update, or refused-<kind> when the fake said no
    conversation_id: str
    activity_id: str | None
    authorization: str | None
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    answer_id: str | None = None  # the id a new message got

    @property
    def card(self) -> dict[str, Any] | None:
        """The Adaptive Card the activity carries, if any."""
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content: dict[str, Any] = attachment["content"]
                return content
        return None

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")


@dataclass
class FakeBotConnector:
    require_token: bool = True
    calls: list[ConnectorCall] = field(default_factory=list)
    failures: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    faults: FaultSwitch = field(default_factory=FaultSwitch)  # tests.fakes.faults
    accept: set[str] | None = None  # the bearer tokens taken (None: any)
    _held: list[tuple[str, float, threading.Event]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1700000000001))
    _runner: web.AppRunner | None = None
    _port: int = 0

    @property
    def url(self) -> str:
        """The ``serviceUrl`` to put in activities (with its trailing slash, like Teams)."""
        return f"http://127.0.0.1:{self._port}/teams/"

    async def start(self) -> FakeBotConnector:
        app = web.Application(middlewares=[self._hold, fault_middleware(self.faults, "/teams/")])
        base = "/teams/v3/conversations"
        app.router.add_post(base, self._create)
        app.router.add_post(base + "/{conversation}/activities", self._post)
        app.router.add_post(base + "/{conversation}/activities/{activity}", self._reply)
        app.router.add_put(base + "/{conversation}/activities/{activity}", self._update)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr,attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.failures.extend([(status, headers)] * times)

    def of_kind(self, kind: str) -> list[ConnectorCall]:
        return [c for c in list(self.calls) if c.kind == kind]

    def arm(self, kind: str, seconds: float) -> threading.Event:
        """Hang (the fault switch's ``HANG``, for ``seconds``) from the next ``post`` (a new
        message) or ``update`` on: the event is set when it arrives. (The switch's own ``arm``
        matches paths, and an update's path starts with a new message's.)"""
        if kind not in ("post", "update"):
            raise ValueError(f"arm a post or an update, not {kind!r}")
        received = threading.Event()
        self._held.append((kind, seconds, received))
        return received

    def disarm(self) -> None:
        self._held.clear()

    @web.middleware
    async def _hold(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._held:
            kind = "post" if request.path.endswith("/activities") else "update"
            if request.method == ("POST" if kind == "post" else "PUT") and self._held[0][0] == kind:
                _, seconds, received = self._held.pop(0)
                self.faults.set(Fault.HANG, seconds)
                received.set()
        response: web.StreamResponse = await handler(request)
        return response

    # handlers --------------------------------------------------------------------------------

    async def _refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if self.require_token and not (scheme == "Bearer" and token):
            return web.json_response(
                {"error": {"code": "Unauthorized", "message": "no bearer token"}}, status=401
            )
        if self.accept is not None and token not in self.accept:
            return web.json_response(
                {"error": {"code": "Unauthorized", "message": "token not issued"}}, status=401
            )
        if self.failures:
            status, headers = self.failures.popleft()
            return web.json_response(
                {"error": {"code": "Failure", "message": f"injected {status}"}},
                status=status,
                headers=headers,
            )
        return None

    async def _record(
        self, request: web.Request, kind: str, answer_id: str | None = None
    ) -> web.Response | None:
        body = await request.json() if request.can_read_body else {}
        refused = await self._refusal(request)
        self.calls.append(
            ConnectorCall(
                request.method,
                kind if refused is None else f"refused-{kind}",
                request.match_info.get("conversation", ""),
                request.match_info.get("activity"),
                request.headers.get("Authorization"),
                body,
                answer_id=answer_id if refused is None else None,
            )
        )
        return refused

    async def _create(self, request: web.Request) -> web.Response:
        refused = await self._record(request, "create")
        if refused is not None:
            return refused
        n = next(self._ids)
        return web.json_response({"id": f"a:conversation-{n}", "activityId": str(n)}, status=201)

    async def _post(self, request: web.Request) -> web.Response:
        new_id = str(next(self._ids))
        refused = await self._record(request, "post", new_id)
        return refused or web.json_response({"id": new_id}, status=201)

    async def _reply(self, request: web.Request) -> web.Response:
        refused = await self._record(request, "reply")
        return refused or web.json_response({"id": str(next(self._ids))}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        refused = await self._record(request, "update")
        return refused or web.json_response({"id": request.match_info["activity"]})


@contextmanager
def running_connector(**options: Any) -> Iterator[FakeBotConnector]:
    """A :class:`FakeBotConnector` served from a loop thread of its own until the block ends."""
    connector = FakeBotConnector(**options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bot-connector", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(connector.start(), loop).result(10)
        yield connector
    finally:
        asyncio.run_coroutine_threadsafe(connector.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def teams_activity(name: str, service_url: str, **changes: Any) -> dict[str, Any]:
    """A Teams payload from the fixtures, pointed at ``service_url``; ``changes`` replace keys
    (``from_`` stands for ``from``)."""
    payload: dict[str, Any] = json.loads((ACTIVITIES / f"{name}.json").read_text())
    payload = copy.deepcopy(payload)
    payload["serviceUrl"] = service_url
    for key, value in changes.items():
        payload["from" if key == "from_" else key] = value
    return payload


class StaticTokenProvider(AccessTokenProviderBase):
    """Stands in for MSAL: every outbound call gets the same non-empty bearer token."""

    def __init__(self, token: str = CONNECTOR_TOKEN) -> None:
        self.token = token
        self.requests = 0

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return AgentAuthConfiguration(client_id=APP_ID, tenant_id=TENANT_ID)

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        self.requests += 1
        return self.token

    def get_token_credential(self) -> AsyncTokenCredential:
        raise NotImplementedError

    async def acquire_token_on_behalf_of(self, scopes: list[str], user_assertion: str) -> str:
        raise NotImplementedError

    async def get_agentic_application_token(
        self, tenant_id: str, agent_app_instance_id: str
    ) -> str | None:
        raise NotImplementedError

    async def get_agentic_instance_token(
        self, tenant_id: str, agent_app_instance_id: str
    ) -> tuple[str, str]:
        raise NotImplementedError

    async def get_agentic_user_token(
        self, tenant_id: str, agent_app_instance_id: str, agentic_user_id: str, scopes: list[str]
    ) -> str | None:
        raise NotImplementedError


@dataclass
class TeamsBot:
    """The bot with Teams wired in, on a temporary SQLite database, talking to the fake."""

    runtime: Runtime
    teams: TeamsIntegration
    connector: FakeBotConnector
    client: httpx.AsyncClient
    outbox: OutboxWorker
    router: Router

    async def send(self, activity: dict[str, Any]) -> httpx.Response:
        """POST an activity to /api/messages, as the Bot Connector would (no token: anonymous)."""
        return await self.client.post("/api/messages", json=activity)

    def activity(self, name: str, **changes: Any) -> dict[str, Any]:
        return teams_activity(name, self.connector.url, **changes)

    def policy(self) -> IngestPolicy:
        return IngestPolicy(
            router=self.router,
            flap_window=timedelta(minutes=30),
            card_refresh=timedelta(seconds=60),
            realert=timedelta(0),
        )


@asynccontextmanager
async def teams_bot(
    tmp_path: Path,
    clock: Clock,
    channel: str = "sre/general",
    roles: str | None = None,
    anonymous: bool = True,
    default_channel: str = "",
    connector_timeout: float = 5,
    password: str = PASSWORD,
    msal: bool = False,
    accept: set[str] | None = None,
    **settings: Any,
) -> AsyncIterator[TeamsBot]:
    """A runtime whose router sends every incident to the console and to Teams ``channel``.

    Outbound tokens come from :class:`StaticTokenProvider`, or with ``msal`` from MSAL itself
    (the app's id, ``password`` and tenant; point the process at the login fake,
    tests/fakes/entra.py); the connector takes only the tokens in ``accept`` when given."""
    connector = await FakeBotConnector(accept=accept).start()
    roles_file = None
    if roles is not None:
        roles_file = tmp_path / "roles.yaml"
        roles_file.write_text(roles)
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        roles_file=roles_file,
        routes=[{"surface": "teams", "channel": channel}],
        **settings,
    )
    teams_settings = TeamsSettings(
        app_id=APP_ID,
        app_password=SecretStr(password),
        tenant_id=TENANT_ID,
        anonymous=anonymous,
        default_channel=default_channel,
        timeout=connector_timeout,
    )
    # the runtime wires Teams itself: routes, surface, the /api/messages route
    tokens = None if msal else StaticTokenProvider()
    runtime = Runtime(config, clock=clock, teams=teams_settings, teams_tokens=tokens)
    await runtime.connect(attempts=1)
    assert runtime.teams is not None
    teams = runtime.teams
    router = runtime.router
    outbox = runtime.outbox
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
            yield TeamsBot(runtime, teams, connector, client, outbox, router)
    finally:
        await connector.stop()
        runtime.engine.dispose()
        if runtime.event_store is not None:
            runtime.event_store.close()
