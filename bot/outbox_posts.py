"""Card posts sent in batches: the cards of different incidents in one lane go out together.

A storm opens many incidents at once; sent one at a time, each card post would cost its own
claim renewal, card read, budget transaction, call and record. Here a batch of up to
``post_batch`` posts (each its card's first pending message, so a card's own messages stay in
order) renews its claims once, reads its cards in one session, spends its budget in one
transaction right before the calls, sends them concurrently, and records the sent ones in one
transaction. A post that fails is recorded on its own (retried, dead or skipped) and blocks only
its card. A crash after the calls and before the record leaves the batch pending: those posts
may be sent again after a restart (at least once, as every message; see :mod:`bot.outbox`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.charts.delivery import ChartDelivery
from bot.outbox_budgets import LaneBudgets
from bot.outbox_rows import OutboxRecords
from bot.pipeline.notify import MessageKind
from bot.ports import ChatSurface, Clock, MessageRef
from bot.store.claims import Claims

POST_BATCH = 50  # card posts of one lane sent at once (different cards; each in order)


class PostBatching:
    """The outbox worker's batched card posts (mixed into :class:`bot.outbox.OutboxWorker`,
    which sets these attributes)."""

    post_batch: int
    claims_lost: int
    charts: ChartDelivery | None
    _budgets: LaneBudgets
    _claims: Claims
    _claim_timeout: timedelta
    _claimed_at: datetime | None
    _clock: Clock
    _delivered: set[int]
    _round_cards: dict[int, asyncio.Future[dict[int, Any]]]  # cards read this round
    _on_delivered: Callable[[str, str, float], None]
    _records: OutboxRecords
    _surfaces: Mapping[str, ChatSurface]

    async def _failed(self, row: Any, exc: Exception) -> bool:
        raise NotImplementedError

    def _after_post(self, conn: Any, row: Any, ref: MessageRef, now: datetime) -> None:
        raise NotImplementedError

    async def _post_cards(
        self,
        lane: tuple[str, str],
        posts: list[Any],
        blocked: set[str],
        spent: set[int],
        waits: list[float],
    ) -> None:
        """Post the cards of ``posts`` (each its card's first pending message), up to
        ``post_batch`` at once: their claims renewed, cards read and budget spent for the
        whole batch right before the calls, which go out together; the sent ones recorded in
        one transaction. A failed post blocks only its own card."""
        surface = self._surfaces[lane[0]]
        bucket = self._budgets.of(lane[0], lane[1], MessageKind.POST.value)
        for start in range(0, len(posts), self.post_batch):
            if bucket is not None and id(bucket) in spent:
                return
            batch = await self._still_mine(posts[start : start + self.post_batch], blocked)
            if bucket is not None and len(batch) > 1:  # read only the cards that may go
                room = await asyncio.to_thread(bucket.room, len(batch))
                batch = batch[: max(room, 1)]
            cards = await self._cards_of([r.incident_id for r in batch])
            for row in [r for r in batch if r.incident_id not in cards]:
                await asyncio.to_thread(
                    self._records.finish, row, "sent", f"skipped: no incident INC-{row.incident_id}"
                )
                self._delivered.add(row.id)
            batch = [r for r in batch if r.incident_id in cards]
            going = len(batch)
            if bucket is not None and batch:
                going, wait = await asyncio.to_thread(bucket.take, len(batch))
                if going < len(batch):
                    spent.add(id(bucket))
                    waits.append(wait)
            sends = [surface.post(cards[r.incident_id], r.channel) for r in batch[:going]]
            results = await asyncio.gather(*sends, return_exceptions=True)
            await self._posted(batch[:going], results, blocked)

    async def _posted(self, rows: list[Any], results: list[Any], blocked: set[str]) -> None:
        """Record a batch of posts: the sent ones in one transaction, each failure as
        :meth:`_deliver` records it; an unexpected error is raised once the rest is recorded."""
        pairs = list(zip(rows, results, strict=True))
        sent = [(r, ref) for r, ref in pairs if isinstance(ref, MessageRef)]
        recorded = await asyncio.to_thread(self._records.save_refs, sent, self._after_post)
        done = {r.id for r in recorded}
        for row, _ in sent:
            if row.id not in done:  # another worker has it now, and records it
                self.claims_lost += 1
                blocked.add(row.order_key)
                continue
            if self.charts is not None:
                self.charts.posted(self._surfaces.get(row.surface), row.incident_id)
            self._delivered.add(row.id)
            age = (self._clock.now() - row.created_at).total_seconds()
            self._on_delivered(row.surface, row.kind, age)
        unexpected: BaseException | None = None
        for row, result in pairs:
            if isinstance(result, MessageRef):
                continue
            if not isinstance(result, Exception):
                unexpected = unexpected or result
                continue
            try:
                if not await self._failed(row, result):
                    blocked.add(row.order_key)
            except Exception as exc:  # raised below, once the others are recorded
                unexpected = unexpected or exc
        if unexpected is not None:
            raise unexpected

    async def _cards_of(self, incident_ids: list[int]) -> dict[int, Any]:
        """The incidents' cards, each read once a round however many lanes post it (a change
        after the read comes as an update, which never overtakes its card's post)."""
        missing = [i for i in dict.fromkeys(incident_ids) if i not in self._round_cards]
        if missing:
            loading = asyncio.ensure_future(asyncio.to_thread(self._records.cards, missing))
            for incident_id in missing:
                self._round_cards[incident_id] = loading
        out: dict[int, Any] = {}
        for incident_id in incident_ids:
            card = (await self._round_cards[incident_id]).get(incident_id)
            if card is not None:
                out[incident_id] = card
        return out

    async def _still_mine(self, rows: list[Any], blocked: set[str]) -> list[Any]:
        """The rows this worker may send now: its claims from this round are fresh (a tenth of
        the claim timeout or younger: most of it left for the call), older ones are renewed."""
        now = self._clock.now()
        if self._claimed_at is not None and now - self._claimed_at < self._claim_timeout / 10:
            return rows
        mine = await asyncio.to_thread(self._claims.renew_many, [r.id for r in rows], now)
        for row in rows:
            if row.id not in mine:
                self.claims_lost += 1
                blocked.add(row.order_key)
        return [r for r in rows if r.id in mine]
