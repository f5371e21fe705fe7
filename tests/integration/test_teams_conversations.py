"""Stored Teams conversations: Teams announces a channel several times at once when a team adds
the app; every announcement succeeds and the channel is stored once, with the latest reference."""

from __future__ import annotations

import asyncio

from microsoft_agents.activity import ChannelAccount, ConversationAccount, ConversationReference
from sqlalchemy import Engine

from integrations.teams.conversations import ConversationStore
from tests.conftest import FakeClock


def reference(service_url: str) -> ConversationReference:
    return ConversationReference(
        channel_id="msteams",
        service_url=service_url,
        conversation=ConversationAccount(id="19:general@thread.tacv2", is_group=True),
        bot=ChannelAccount(id="28:bot", name="bot"),
    )


async def test_announcements_of_one_channel_at_once_store_it_once(
    engine: Engine, clock: FakeClock
) -> None:
    store = ConversationStore(engine, clock)
    urls = [f"https://smba.example.net/emea/{n}/" for n in range(6)]
    for team in range(10):  # each team's channel announced six times at once
        key = f"team-{team}/general"
        await asyncio.gather(*(store.save(key, reference(url)) for url in urls))
    assert await store.count() == 10
    await store.save("sre/general", reference(urls[0]))
    found = await store.find("sre/general")
    assert found is not None
    assert found.reference.service_url in urls
    await store.save("sre/general", reference("https://smba.example.net/amer/"))
    again = await store.find("sre/general")
    assert again is not None and again.reference.service_url == "https://smba.example.net/amer/"
    assert await store.count() == 11
