"""Where the bot may post: each Teams conversation it was added to, under a routing key.

Teams lets a bot post only into conversations it has been added to, through the connector
address (``serviceUrl``) that conversation uses. When the app is added to a team (or a chat),
Teams tells the bot with a ``conversationUpdate``; the bot stores that conversation's reference
in the ``conversations`` table under a key that routes name:

* a team channel: ``<team name>/<channel name>`` in lower case (``sre/general``);
* a group or personal chat: its conversation id;
* a personal chat is also stored as ``personal:teams:<AAD object id>`` of its person, where
  direct messages to them go.

A route (``BOT_ROUTES``) or ``TEAMS_DEFAULT_CHANNEL`` names the key, or a conversation id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from microsoft_agents.activity import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
)
from microsoft_agents.activity.teams import TeamsChannelData
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from bot.ports import Clock
from bot.store.repo import insert_ignore
from bot.store.tables import ConversationRow

SURFACE = "teams"
CONVERSATIONS = ConversationRow.__table__  # type: ignore[attr-defined]
GENERAL = "General"


@dataclass(frozen=True, slots=True)
class StoredConversation:
    key: str
    reference: ConversationReference


def channel_data(activity: Activity) -> TeamsChannelData:
    """Teams' ``channelData`` (team, channel, tenant, event type), empty when absent or odd."""
    raw = activity.channel_data
    if isinstance(raw, TeamsChannelData):
        return raw
    if isinstance(raw, Mapping):
        try:
            return TeamsChannelData.model_validate(dict(raw))
        except ValidationError:
            pass
    return TeamsChannelData()


def base_conversation_id(conversation_id: str) -> str:
    """A channel thread's id (``19:…@thread.tacv2;messageid=…``) without the thread part."""
    return conversation_id.split(";", 1)[0]


def channel_key(activity: Activity) -> str:
    """The routing key of the conversation an activity belongs to (see the module text)."""
    data = channel_data(activity)
    team_name = (data.team.name or "").strip() if data.team else ""
    if team_name:
        channel_name = (data.channel.name or "").strip() if data.channel else ""
        return f"{team_name}/{channel_name or GENERAL}".lower()
    return reference_of(activity).conversation.id


def reference_of(activity: Activity) -> ConversationReference:
    """What a proactive post into the activity's conversation needs (no user, no activity)."""
    conversation = activity.conversation or ConversationAccount(id="")
    data = channel_data(activity)
    tenant = conversation.tenant_id or (data.tenant.id if data.tenant else None)
    # a channel event (channelCreated) arrives in the team's conversation but names the channel
    channel_id = data.channel.id if data.channel and data.channel.id else None
    return ConversationReference(
        conversation=ConversationAccount(
            id=channel_id or base_conversation_id(conversation.id),
            tenant_id=tenant,
            conversation_type=conversation.conversation_type,
            is_group=conversation.is_group,
        ),
        agent=activity.recipient or ChannelAccount(id=""),
        channel_id=activity.channel_id,
        service_url=activity.service_url,
    )


def personal_key(actor: str) -> str:
    """The key of someone's 1:1 chat with the bot: ``personal:teams:<AAD object id>``."""
    return f"personal:{actor}"


def match(stored: Sequence[StoredConversation], channel: str) -> StoredConversation | None:
    """The conversation a route's ``channel`` names: by key (any case), else by conversation id."""
    wanted = channel.strip()
    for item in stored:
        if item.key in (wanted, wanted.lower()):
            return item
    base = base_conversation_id(wanted)
    return next((s for s in stored if s.reference.conversation.id == base), None)


class ConversationStore:
    """Stored conversation references (``conversations`` rows of surface ``teams``)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def save(self, key: str, reference: ConversationReference) -> None:
        """Store (or refresh) the reference under ``key``."""
        now = self._clock.now()
        data = reference.model_dump_json(by_alias=True, exclude_none=True)

        def store() -> None:
            # insert-or-skip, then update: two announcements of one channel at once (Teams sends
            # several when a team adds the app) both succeed, and the row is stored once
            where = (CONVERSATIONS.c.surface == SURFACE) & (CONVERSATIONS.c.channel == key)
            row = {
                "surface": SURFACE,
                "channel": key,
                "reference_json": data,
                "created_at": now,
                "updated_at": now,
            }
            with self._engine.begin() as conn:
                insert_ignore(conn, CONVERSATIONS, [row], ("surface", "channel"))
                conn.execute(
                    CONVERSATIONS.update().where(where).values(reference_json=data, updated_at=now)
                )

        await asyncio.to_thread(store)

    async def forget(self, conversation_id: str) -> int:
        """Drop every key of a conversation the bot was removed from; return how many."""
        base = base_conversation_id(conversation_id)
        keys = [s.key for s in await self.all() if s.reference.conversation.id == base]

        def drop() -> None:
            with self._engine.begin() as conn:
                conn.execute(
                    CONVERSATIONS.delete().where(
                        CONVERSATIONS.c.surface == SURFACE, CONVERSATIONS.c.channel.in_(keys)
                    )
                )

        if keys:
            await asyncio.to_thread(drop)
        return len(keys)

    async def find(self, channel: str) -> StoredConversation | None:
        """The conversation stored under ``channel``, or whose conversation id it is."""
        return match(await self.all(), channel)

    async def key_of(self, conversation_id: str) -> str | None:
        base = base_conversation_id(conversation_id)
        found = next((s for s in await self.all() if s.reference.conversation.id == base), None)
        return found.key if found else None

    async def count(self) -> int:
        def load() -> int:
            with self._engine.connect() as conn:
                return int(
                    conn.execute(
                        select(func.count()).where(CONVERSATIONS.c.surface == SURFACE)
                    ).scalar_one()
                )

        return await asyncio.to_thread(load)

    async def all(self) -> list[StoredConversation]:
        def load() -> list[StoredConversation]:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(CONVERSATIONS.c.channel, CONVERSATIONS.c.reference_json)
                    .where(CONVERSATIONS.c.surface == SURFACE)
                    .order_by(CONVERSATIONS.c.channel)
                ).all()
            return [
                StoredConversation(
                    row.channel, ConversationReference.model_validate_json(row.reference_json)
                )
                for row in rows
            ]

        return await asyncio.to_thread(load)
