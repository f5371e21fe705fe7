"""``SlackChatSurface``: cards, thread replies and storm digests through the Slack Web API.

Every call goes through one ``AsyncWebClient`` (built with ``base_url=SLACK_API_URL``), sits in
a deadline, and has its failures translated (see :mod:`integrations.slack.errors`): the outbox
retries ``TransientError`` after Slack's Retry-After and stops at ``PermanentError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.charts.delivery import ChartFile
from bot.domain.card import Card
from bot.errors import BotError, PermanentError, TransientError
from bot.ports import DigestLine, Health, HealthStatus, MessageRef
from integrations.slack.errors import translate
from integrations.slack.files import upload_chart
from integrations.slack.render import render_card, render_digest, render_reply

log = logging.getLogger(__name__)

NAME = "slack"
CARD_EVENT = "incident_card"


def call_failed(method: str, error: BotError) -> str:
    return f"Slack {method} failed: {error}"


class SlackChatSurface:
    """Implements ``ChatSurface``, ``DigestSurface`` and ``DirectSurface`` (``bot.ports``) and
    ``ChartSurface`` (``bot.charts.delivery``)."""

    name = NAME

    def __init__(
        self,
        client: AsyncWebClient,
        console_url: str,
        timeout: float = 10.0,
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._console_url = console_url
        self._timeout = timeout
        self._secrets = tuple(secrets)

    # ChatSurface -----------------------------------------------------------------------------

    async def post(self, card: object, channel: str) -> MessageRef:
        assert isinstance(card, Card)
        message = render_card(card, self._console_url)
        metadata = {
            "event_type": CARD_EVENT,
            "event_payload": {"incident_id": card.incident_id, "human_id": card.human_id},
        }
        answer = await self.call(
            "chat.postMessage",
            {
                "channel": channel,
                **message,
                "metadata": metadata,
                "unfurl_links": False,
                "unfurl_media": False,
            },
        )
        return MessageRef(NAME, str(answer.get("channel") or channel), str(answer["ts"]))

    async def update(self, ref: MessageRef, card: object) -> None:
        assert isinstance(card, Card)
        message = render_card(card, self._console_url)
        await self.call("chat.update", {"channel": ref.channel, "ts": ref.message_id, **message})

    async def reply(self, ref: MessageRef, text: str) -> None:
        message = render_reply(text)
        await self.call(
            "chat.postMessage",
            {"channel": ref.channel, "thread_ts": ref.message_id, **message},
        )

    async def check(self) -> Health:
        try:
            answer = await self.call("auth.test", {}, read=True)
        except BotError as exc:
            return Health(HealthStatus.DOWN, str(exc))
        return Health(HealthStatus.OK, f"team {answer.get('team')} as @{answer.get('user')}")

    # DigestSurface ---------------------------------------------------------------------------

    async def post_digest(self, channel: str, lines: Sequence[DigestLine]) -> MessageRef:
        message = render_digest(lines, self._console_url)
        answer = await self.call("chat.postMessage", {"channel": channel, **message})
        return MessageRef(NAME, str(answer.get("channel") or channel), str(answer["ts"]))

    async def update_digest(self, ref: MessageRef, lines: Sequence[DigestLine]) -> None:
        message = render_digest(lines, self._console_url)
        await self.call("chat.update", {"channel": ref.channel, "ts": ref.message_id, **message})

    # DirectSurface ---------------------------------------------------------------------------

    async def direct(self, user: str, text: str) -> None:
        """A direct message to ``user`` (``U123`` or ``slack:U123``): ``conversations.open``
        finds (or opens) the DM, ``chat.postMessage`` sends it. Errors are raised translated,
        for the outbox to retry or give up on."""
        user_id = user.removeprefix(f"{NAME}:")
        if not user_id:
            raise PermanentError("a Slack direct message needs a user id")
        opened = await self.call("conversations.open", {"users": user_id})
        channel = str((opened.get("channel") or {}).get("id") or "")
        if not channel:
            raise PermanentError(f"Slack opened no direct conversation with {user_id}")
        message = render_reply(text)
        await self.call(
            "chat.postMessage",
            {"channel": channel, **message, "unfurl_links": False, "unfurl_media": False},
        )

    # ChartSurface (bot.charts.delivery) ------------------------------------------------------

    async def upload_chart(self, ref: MessageRef, chart: ChartFile) -> None:
        """The incident's chart as a PNG in the card's thread (``files:write``)."""
        await upload_chart(self._client, ref, chart, self._timeout, self._secrets)

    # private answers ---------------------------------------------------------------------------

    async def post_ephemeral(self, channel: str, user_id: str, text: str) -> None:
        """A message only ``user_id`` sees in ``channel`` (failures are logged, not raised:
        there is nowhere else to say it)."""
        if not channel:
            return
        with contextlib.suppress(BotError):
            await self.call(
                "chat.postEphemeral", {"channel": channel, "user": user_id, "text": text}
            )

    # the one door to the Web API -------------------------------------------------------------

    async def call(
        self, method: str, arguments: dict[str, Any], read: bool = False
    ) -> dict[str, Any]:
        """Call ``method`` (writes as a JSON POST, reads as a GET with a query, as slack-sdk
        does); answer Slack's data or raise a translated error."""
        try:
            async with asyncio.timeout(self._timeout + 1):
                if read:
                    response = await self._client.api_call(
                        method, http_verb="GET", params=arguments
                    )
                else:
                    response = await self._client.api_call(method, json=arguments)
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = translate(exc, method, self._secrets)
            level = logging.INFO if isinstance(error, TransientError) else logging.WARNING
            log.log(level, call_failed(method, error))
            raise error from None
        data = response.data
        return dict(data) if isinstance(data, dict) else {}
