"""The outbox's pager messages: trigger, acknowledge, resolve and note a page.

A trigger renders the page from the database at delivery time; the link and the on-call line
the pager answers go on the incident, and every card of it is refreshed to show them. The
other kinds need the page's key from an earlier trigger (``NotFound`` without one: the
message is skipped).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine, select, update

from bot.domain.page import Page, build_page
from bot.errors import NotFound, PermanentError
from bot.pipeline.notify import MessageKind, enqueue
from bot.ports import Clock, NotingPager, Pager
from bot.store.cards import rca_from_json
from bot.store.repo import CARD_REFS, INCIDENTS, to_incident

PAGE_KINDS = frozenset(
    {MessageKind.TRIGGER, MessageKind.ACKNOWLEDGE, MessageKind.RESOLVE, MessageKind.NOTE}
)


class PageSender:
    def __init__(
        self, engine: Engine, clock: Clock, console_url: str, wake: Callable[[], None]
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._console_url = console_url
        self._wake = wake

    async def send(
        self, pager: Pager, row: Any, kind: MessageKind, spend: Callable[[], Awaitable[None]]
    ) -> None:
        """Send one page message; ``spend`` takes its budget right before the call to the
        pager (after the page is read from the database)."""
        if kind is MessageKind.TRIGGER:
            page = await asyncio.to_thread(self.page_of, row.incident_id)
            await spend()
            ref = await pager.trigger(page, row.channel)
            if ref.url or ref.oncall:
                await asyncio.to_thread(self.save_page_url, row.incident_id, ref.url, ref.oncall)
            return
        key = await asyncio.to_thread(self.page_key, row.incident_id)
        if not key:
            raise NotFound(f"INC-{row.incident_id} was never paged")
        await spend()
        if kind is MessageKind.NOTE:
            if not isinstance(pager, NotingPager):
                raise PermanentError(f"{row.surface} takes no notes")
            await pager.note(key, json.loads(row.payload_json).get("text", ""))
        elif kind is MessageKind.ACKNOWLEDGE:
            await pager.acknowledge(key, row.channel)
        else:
            await pager.resolve(key, row.channel)

    def page_of(self, incident_id: int) -> Page:
        with self._engine.connect() as conn:
            row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).one()
        return build_page(
            to_incident(row), rca_from_json(row.rca_json), self._console_url, row.search_link
        )

    def page_key(self, incident_id: int) -> str:
        with self._engine.connect() as conn:
            key = conn.execute(
                select(INCIDENTS.c.page_ref).where(INCIDENTS.c.id == incident_id)
            ).scalar()
        return str(key or "")

    def save_page_url(self, incident_id: int, url: str, oncall: str = "") -> None:
        """The page's link and who is on call go on the incident, and every card of it is
        refreshed to show them."""
        now = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == incident_id)
                .values(page_url=url, oncall=oncall, updated_at=now)
            )
            refs = conn.execute(
                select(CARD_REFS.c.surface, CARD_REFS.c.channel).where(
                    CARD_REFS.c.incident_id == incident_id
                )
            ).all()
            rows = [
                {
                    "idempotency_key": f"pageurl:{r.surface}:{r.channel}:{incident_id}",
                    "surface": r.surface,
                    "channel": r.channel,
                    "kind": MessageKind.UPDATE.value,
                    "incident_id": incident_id,
                    "order_key": f"{r.surface}:{r.channel}:{incident_id}",
                    "payload_json": "{}",
                    "severity_rank": 2,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "sent_at": None,
                    "last_error": "",
                }
                for r in refs
            ]
            enqueue(conn, rows)
        self._wake()
