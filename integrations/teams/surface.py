"""``TeamsChatSurface``: incident cards posted, updated and answered in Teams conversations.

Every send is a proactive turn of the SDK's adapter on the stored conversation reference:
a new card is ``POST /v3/conversations/{id}/activities`` (the continuation activity has no
id, or the post would become a reply), an update is ``PUT …/activities/{activityId}`` and a
reply goes into the card's thread with ``POST …/activities/{activityId}``. A card's
:class:`~bot.ports.MessageRef` is ``("teams", <routing key>, "<conversation id>|<activity id>")``.

Failures are translated here: 429, 412, 5xx and network trouble are ``TransientError``
(``Retry-After`` honoured); 401, 403, 404 and other refusals are ``PermanentError`` (a 404 on
an update or a reply is ``NotFound``: the card was deleted, there is nothing left to change).
Rate limits are the outbox's business (its ``teams`` token bucket). ``refresh_for`` names,
per incident, the Teams users its card refreshes for (their own view: see
:mod:`integrations.teams.views`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from microsoft_agents.activity import Activity, ActivityTypes, Attachment, ConversationReference
from microsoft_agents.hosting.core import ChannelServiceAdapter, TurnContext
from msal.exceptions import MsalError
from sqlalchemy.exc import SQLAlchemyError

from bot.domain.card import Card
from bot.errors import BotError, NotFound, PermanentError, TransientError
from bot.ports import Clock, Health, HealthStatus, MessageRef
from integrations.retry_after import retry_after_seconds
from integrations.teams.charts import ChartLinks
from integrations.teams.conversations import (
    ConversationStore,
    StoredConversation,
    match,
    personal_key,
)
from integrations.teams.render import CONTENT_TYPE, render_card

NAME = "teams"
SEPARATOR = "|"
TRANSIENT_STATUS = frozenset({408, 412, 429, 500, 502, 503, 504})


def card_activity(content: dict[str, Any], summary: str = "") -> Activity:
    """A message carrying one Adaptive Card (``summary`` is what notifications show)."""
    activity = Activity(
        type=ActivityTypes.message,
        attachments=[Attachment(content_type=CONTENT_TYPE, content=content)],
    )
    if summary:
        activity.summary = summary
    return activity


def text_activity(text: str) -> Activity:
    """A plain-text message (shown as typed: no markdown)."""
    return Activity(type=ActivityTypes.message, text=text, text_format="plain")


async def nobody(card: Card) -> Sequence[str]:
    """No one named: the card refreshes for no one in particular."""
    return ()


class TeamsChatSurface:
    name = NAME

    def __init__(
        self,
        adapter: ChannelServiceAdapter,
        app_id: str,
        conversations: ConversationStore,
        clock: Clock,
        timeout: float = 10.0,
        default_channel: str = "",
        refresh_for: Callable[[Card], Awaitable[Sequence[str]]] | None = None,
        charts: ChartLinks | None = None,
    ) -> None:
        self._adapter = adapter
        self._charts = charts or ChartLinks()
        self._refresh_for = refresh_for or nobody
        self._clock = clock
        self._app_id = app_id
        self._conversations = conversations
        self._timeout = timeout
        self._default_channel = default_channel

    async def post(self, card: object, channel: str) -> MessageRef:
        assert isinstance(card, Card)
        stored = await self._find(channel)
        if stored is None:
            raise PermanentError(
                f"no Teams conversation is known as {channel!r}: add the app to that channel "
                "(its key is printed when it joins) or fix the route"
            )
        activity = await self._card_activity(card)
        sent = await self._turn(stored.reference, None, lambda ctx: ctx.send_activity(activity))
        if sent is None or not getattr(sent, "id", None):
            raise PermanentError(f"Teams accepted the card of {card.human_id} but gave no id")
        conversation_id = stored.reference.conversation.id
        return MessageRef(NAME, channel, f"{conversation_id}{SEPARATOR}{sent.id}")

    async def update(self, ref: MessageRef, card: object) -> None:
        assert isinstance(card, Card)
        reference, activity_id = await self._locate(ref)
        activity = await self._card_activity(card)
        activity.id = activity_id
        await self._turn(reference, None, lambda ctx: ctx.update_activity(activity), gone=True)

    async def _card_activity(self, card: Card) -> Activity:
        """The card's message: refreshing per person, with its chart's signed image URL."""
        content = render_card(
            card,
            refresh_for=await self._refresh_for(card),
            chart_url=await self._charts.url(card.incident_id),
        )
        return card_activity(content, f"{card.human_id}: {card.title}")

    async def reply(self, ref: MessageRef, text: str) -> None:
        reference, activity_id = await self._locate(ref)
        message = text_activity(text)
        await self._turn(reference, activity_id, lambda ctx: ctx.send_activity(message), gone=True)

    async def direct(self, user: str, text: str) -> None:
        """A direct message in ``user``'s 1:1 chat with the bot (``teams:<AAD object id>``).

        Teams lets a bot start a chat only with people who have talked to it (or installed it
        personally): without a stored 1:1 conversation this is a ``PermanentError`` saying so.
        """
        who = user if user.startswith(f"{NAME}:") else f"{NAME}:{user}"
        stored = await self._find(personal_key(who))
        if stored is None:
            raise PermanentError(
                f"no Teams 1:1 chat with {who}: Teams lets the bot write to someone only after "
                "they have talked to it once (open a chat with the app and say hello)"
            )
        message = text_activity(text)
        await self._turn(stored.reference, None, lambda ctx: ctx.send_activity(message))

    async def check(self) -> Health:
        try:
            stored = await self._conversations.all()
        except SQLAlchemyError as exc:
            return Health(HealthStatus.DEGRADED, f"cannot read the Teams conversations: {exc}")
        if not stored:
            return Health(
                HealthStatus.DEGRADED,
                "no Teams conversations yet: add the app to a team channel or a chat",
            )
        if self._default_channel and match(stored, self._default_channel) is None:
            return Health(
                HealthStatus.DEGRADED,
                f"TEAMS_DEFAULT_CHANNEL {self._default_channel!r} is not among the "
                f"{len(stored)} known conversations: add the app there",
            )
        count = len(stored)
        return Health(HealthStatus.OK, f"{count} conversation{'s' if count != 1 else ''}")

    # internals -------------------------------------------------------------------------------

    async def _find(self, channel: str) -> StoredConversation | None:
        try:
            return await self._conversations.find(channel)
        except SQLAlchemyError as exc:
            raise TransientError(f"cannot read the Teams conversations: {exc}") from None

    async def _locate(self, ref: MessageRef) -> tuple[ConversationReference, str]:
        conversation_id, _, activity_id = ref.message_id.rpartition(SEPARATOR)
        if not conversation_id or not activity_id:
            raise PermanentError(f"not a Teams message reference: {ref.message_id!r}")
        stored = await self._find(conversation_id) or await self._find(ref.channel)
        if stored is None:
            raise NotFound(f"the Teams conversation of {ref.channel!r} is no longer known")
        reference = stored.reference.model_copy(deep=True)
        reference.conversation.id = conversation_id
        return reference, activity_id

    async def _turn(
        self,
        reference: ConversationReference,
        activity_id: str | None,
        send: Callable[[TurnContext], Awaitable[Any]],
        gone: bool = False,
    ) -> Any:
        """Run ``send`` in a proactive turn; return what it returned; translate failures."""
        continuation = reference.get_continuation_activity()
        continuation.id = activity_id  # None: a new message, not a reply
        result: list[Any] = []

        async def callback(context: TurnContext) -> None:
            result.append(await send(context))

        try:
            async with asyncio.timeout(self._timeout):
                await self._adapter.continue_conversation(self._app_id, continuation, callback)
        except aiohttp.ClientResponseError as exc:
            raise _translate(exc, gone, self._clock.now()) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransientError(f"Teams did not answer: {type(exc).__name__}: {exc}") from None
        except BotError:
            raise
        except ValueError as exc:  # the SDK and MSAL say "no token" with ValueError
            raise TransientError(f"Teams send failed: {exc}") from None
        except MsalError as exc:  # Entra ID's token endpoint answered 5xx, or not in time
            raise TransientError(f"Teams send failed: no token from Entra ID: {exc}") from None
        return result[0] if result else None


def _translate(exc: aiohttp.ClientResponseError, gone: bool, now: datetime) -> BotError:
    status = exc.status
    detail = f"Teams answered {status}: {_short(exc.message)}"
    if status in TRANSIENT_STATUS:
        return TransientError(detail, retry_after(exc.headers, now))
    if status == 404 and gone:
        return NotFound(f"{detail} (the card was deleted)")
    if status in (401, 403):
        return PermanentError(
            f"{detail}: check TEAMS_APP_ID and its credentials, and that the app is still "
            "installed in this conversation"
        )
    return PermanentError(detail)


def retry_after(headers: Mapping[str, str] | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (either form); None when absent or unreadable."""
    return retry_after_seconds((headers or {}).get("Retry-After"), now)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
