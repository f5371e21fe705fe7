"""``build_slack``: the Slack surface, the bolt app and its HTTP route (or Socket Mode), built
from :class:`SlackSettings` and the core's :class:`Operations`.

::

    slack = build_slack(slack_settings, runtime.operations, settings.console_url)
    runtime.surfaces["slack"] = slack.surface       # cards, replies, storm digests
    app.include_router(slack.router)                # POST /slack/events (HTTP mode)
    await slack.start() … await slack.stop()        # HTTP session; Socket Mode connection
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import aiohttp
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, ConfigError
from bot.operations import Operations
from integrations.slack.app import BotIdentity, Inflight, build_app
from integrations.slack.buttons import Buttons
from integrations.slack.identity import UserGroups
from integrations.slack.runs import Runs
from integrations.slack.settings import ENV_PREFIX, SlackSettings
from integrations.slack.shape import dispatchable
from integrations.slack.slash import SlashCommands
from integrations.slack.surface import SlackChatSurface

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def not_identified(error: BotError) -> str:
    return f"Slack did not say who the bot is at start-up ({error}); asking again on demand"


@dataclass(eq=False)
class SlackIntegration:
    settings: SlackSettings
    client: AsyncWebClient
    surface: SlackChatSurface
    app: AsyncApp
    router: APIRouter
    groups: UserGroups
    inflight: Inflight
    identity: BotIdentity
    _socket: AsyncSocketModeHandler | None = field(default=None, repr=False)
    _connecting: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def channel(self) -> str:
        """Where cards go when no route names a Slack channel ("" for routed cards only)."""
        return self.settings.default_channel

    async def start(self) -> None:
        """Open the shared HTTP session; in the background, learn who the bot is and, in Socket
        Mode, connect (start-up never waits for Slack)."""
        if self.client.session is None or self.client.session.closed:
            self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout)
            )
        self.app.client.session = self.client.session
        self.inflight.spawn(self._learn_identity())
        if self.settings.app_token is not None and self._socket is None:
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.app_token.get_secret_value()
            )
            # connects in the background: slack-sdk retries until Slack answers, and reconnects
            self._connecting = asyncio.create_task(self._socket.connect_async())

    async def _learn_identity(self) -> None:
        try:
            await self.identity.learn()
        except BotError as exc:  # Slack is down: requests ask again; cards retry
            log.warning(not_identified(exc))

    async def stop(self) -> None:
        """Disconnect, let acknowledged work finish, close the HTTP session."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        await self.inflight.drain()
        if self.client.session is not None and not self.client.session.closed:
            await self.client.session.close()
        self.client.session = self.app.client.session = None


def build_slack(
    settings: SlackSettings, operations: Operations, console_url: str
) -> SlackIntegration:
    """Everything Slack needs, wired; raises ConfigError when the settings cannot work."""
    settings.require_usable()
    if settings.bot_token is None:
        raise ConfigError(f"{ENV_PREFIX}BOT_TOKEN: required to use Slack")
    client = AsyncWebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.api_url,
        timeout=int(settings.timeout),
    )
    surface = SlackChatSurface(client, console_url, settings.timeout, settings.secret_values())
    identity = BotIdentity(surface, settings.bot_token.get_secret_value())
    app_client = AsyncWebClient(base_url=settings.api_url, timeout=int(settings.timeout))
    identities = list(operations.roles.members)
    groups = UserGroups(
        surface, settings.uses_role_groups(identities), settings.group_cache_seconds
    )
    inflight = Inflight()
    signing_secret = (
        settings.signing_secret.get_secret_value() if settings.signing_secret is not None else ""
    )
    buttons = Buttons(operations, groups, surface)
    runs = Runs(operations, groups, surface, buttons)
    app = build_app(
        app_client,
        identity,
        signing_secret,
        buttons,
        SlashCommands(operations, groups, surface, console_url, settings.command, runs),
        inflight,
        runs,
    )
    router = events_router(app, signing_secret)
    return SlackIntegration(settings, client, surface, app, router, groups, inflight, identity)


def events_router(app: AsyncApp, signing_secret: str) -> APIRouter:
    """``POST /slack/events``: Slack's requests handed to bolt.

    Bolt refuses a bad signature or a stale timestamp with 401; a correctly signed body that
    is not what Slack sends (malformed JSON in ``payload``, fields of the wrong shape) is
    answered 400 here instead of failing inside bolt.
    """
    handler = AsyncSlackRequestHandler(app)
    verifier = SignatureVerifier(signing_secret)
    router = APIRouter()

    @router.post(EVENTS_PATH, include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if verifier.is_valid_request(body, dict(request.headers)):
            problem = dispatchable(body, request.headers.get("content-type"))
            if problem is not None:
                return JSONResponse({"error": problem}, status_code=400)
        try:
            return await handler.handle(request)
        except ValueError:
            body = await request.body()
            if not verifier.is_valid_request(body, dict(request.headers)):
                return JSONResponse({"error": "invalid request signature"}, status_code=401)
            return JSONResponse({"error": "the body is not a Slack payload"}, status_code=400)

    return router
