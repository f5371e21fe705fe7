"""A ChatSurface that records what it is asked to deliver and fails on demand."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.domain.card import Card
from bot.domain.page import Page
from bot.errors import BotError
from bot.ports import DigestLine, Health, HealthStatus, MessageRef, PageRef


@dataclass
class RecordingSurface:
    name: str = "console"
    calls: list[tuple[str, int, str]] = field(default_factory=list)  # (kind, incident, detail)
    failures: deque[BotError] = field(default_factory=deque)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.popleft()

    async def post(self, card: object, channel: str) -> MessageRef:
        assert isinstance(card, Card)
        self._maybe_fail()
        self.calls.append(("post", card.incident_id, card.state.value))
        return MessageRef(self.name, channel, f"msg-{card.incident_id}")

    async def update(self, ref: MessageRef, card: object) -> None:
        assert isinstance(card, Card)
        self._maybe_fail()
        self.calls.append(("update", card.incident_id, ref.message_id))

    async def reply(self, ref: MessageRef, text: str) -> None:
        self._maybe_fail()
        self.calls.append(("reply", int(ref.message_id.split("-")[1]), text))

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


@dataclass
class DigestRecordingSurface(RecordingSurface):
    """Also stands one digest message in for many cards."""

    digests: list[tuple[str, list[str]]] = field(default_factory=list)  # (post|update, ids)

    async def post_digest(self, channel: str, lines: Sequence[DigestLine]) -> MessageRef:
        self.digests.append(("post", [line.human_id for line in lines]))
        return MessageRef(self.name, channel, "digest-1")

    async def update_digest(self, ref: MessageRef, lines: Sequence[DigestLine]) -> None:
        self.digests.append(("update", [line.human_id for line in lines]))


@dataclass
class RecordingPager:
    """A Pager that records the pages it is asked for."""

    name: str = "pagerduty"
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (action, key, channel)
    failures: deque[BotError] = field(default_factory=deque)

    async def trigger(self, page: object, channel: str) -> PageRef:
        assert isinstance(page, Page)
        if self.failures:
            raise self.failures.popleft()
        self.calls.append(("trigger", page.dedup_key, channel))
        return PageRef(page.dedup_key, f"https://pager.example/incidents/{len(self.calls)}")

    async def acknowledge(self, key: str, channel: str) -> None:
        self.calls.append(("acknowledge", key, channel))

    async def resolve(self, key: str, channel: str) -> None:
        self.calls.append(("resolve", key, channel))

    async def check(self) -> Health:
        return Health(HealthStatus.OK)
