"""The chart image on a Teams card: a signed, expiring bot URL Teams fetches the PNG from.

Teams loads a card's images itself, without the viewer's credentials, so the link carries its
own permission (see :mod:`bot.charts.signing`). Teams shows only HTTPS images: the bot's public
address (``BOT_PUBLIC_URL``) must be ``https://`` for cards to carry the chart. The core hands
in how to sign one (:attr:`ChartLinks.url_of`); until then, and whenever signing fails, cards
go out without the image: a chart never holds up or breaks a card.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from bot.errors import BotError

log = logging.getLogger(__name__)


class ChartLinks:
    def __init__(self, url_of: Callable[[int], Awaitable[str]] | None = None) -> None:
        self.url_of = url_of

    async def url(self, incident_id: int) -> str:
        """The image URL of the incident's chart, or "" (no chart on the card)."""
        if self.url_of is None:
            return ""
        try:
            url = await self.url_of(incident_id)
        except (BotError, OSError, SQLAlchemyError) as exc:
            log.warning("INC-%s: card sent without its chart: %s", incident_id, exc)
            return ""
        return url if url.startswith("https://") else ""
