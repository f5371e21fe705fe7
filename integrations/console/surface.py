"""``ConsoleChatSurface``: delivering a card means telling the live console views about it.

Direct messages to console users are the delivered outbox rows of kind ``direct`` themselves
(see ``bot.console.remediation.notifications``); delivering one tells live pages to look."""

from __future__ import annotations

from bot.domain.card import Card
from bot.events import Broadcaster, Change
from bot.ports import Health, HealthStatus, MessageRef


class ConsoleChatSurface:
    name = "console"

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster
        self.delivered = 0

    async def post(self, card: object, channel: str) -> MessageRef:
        assert isinstance(card, Card)
        self._broadcaster.publish(Change(card.incident_id, "post"))
        self.delivered += 1
        return MessageRef(self.name, channel, f"console-{card.incident_id}")

    async def update(self, ref: MessageRef, card: object) -> None:
        assert isinstance(card, Card)
        self._broadcaster.publish(Change(card.incident_id, "update"))
        self.delivered += 1

    async def reply(self, ref: MessageRef, text: str) -> None:
        incident_id = int(ref.message_id.rsplit("-", 1)[-1])
        self._broadcaster.publish(Change(incident_id, "reply"))
        self.delivered += 1

    async def direct(self, user: str, text: str) -> None:
        """A direct message to a console user: the outbox row itself is what the console lists
        (``/console/notifications``); live pages are told one arrived."""
        self._broadcaster.publish(Change(0, "direct"))
        self.delivered += 1

    async def check(self) -> Health:
        return Health(HealthStatus.OK, f"{self._broadcaster.subscribers} live viewers")
