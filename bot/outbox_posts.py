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
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.charts.delivery import ChartDelivery
from bot.outbox_budgets import LaneBudgets
from bot.outbox_rows import OutboxRecords
from bot.pipeline.notify import MessageKind
from bot.ports import ChatSurface, Clock, MessageRef
from bot.store.claims import Claims

POST_BATCH = 500  # card posts of one lane sent at once (different cards; each in order)


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

    async def _send_cards(
        self,
        lane: tuple[str, str],
        firsts: list[Any],
        blocked: set[str],
        spent: set[int],
        waits: list[float],
    ) -> None:
        """Send the card posts and card updates of ``firsts`` (each its card's first pending
        message, due), each kind in batches of up to ``post_batch``: their claims renewed,
        cards read and budget spent for the whole batch right before the calls, which go out
        together; the sent ones recorded in one transaction. A failed message blocks only its
        own card."""
        for kind in (MessageKind.POST, MessageKind.UPDATE):
            rows = [r for r in firsts if r.kind == kind.value]
            bucket = self._budgets.of(lane[0], lane[1], kind.value)
            for start in range(0, len(rows), self.post_batch):
                if bucket is not None and id(bucket) in spent:
                    break
                batch = await self._still_mine(rows[start : start + self.post_batch], blocked)
                if bucket is not None and len(batch) > 1:  # read only the cards that may go
                    room = await asyncio.to_thread(bucket.room, len(batch))
                    batch = batch[: max(room, 1)]
                batch, calls = await self._calls(lane[0], kind, batch)
                going = len(batch)
                if bucket is not None and batch:
                    going, wait = await asyncio.to_thread(bucket.take, len(batch))
                    if going < len(batch):
                        spent.add(id(bucket))
                        waits.append(wait)
                for call in calls[going:]:
                    call.close()  # over budget: not made
                results = await asyncio.gather(*calls[:going], return_exceptions=True)
                await self._sent(kind, batch[:going], results, blocked)

    async def _calls(
        self, surface_name: str, kind: MessageKind, rows: list[Any]
    ) -> tuple[list[Any], list[Coroutine[Any, Any, Any]]]:
        """The rows that can be sent, with their calls (not started): a row whose incident or
        (for an update) whose posted card is gone is recorded as skipped."""
        surface = self._surfaces[surface_name]
        cards = await self._cards_of([r.incident_id for r in rows])
        refs: dict[int, MessageRef] = {}
        if kind is MessageKind.UPDATE:
            refs = await asyncio.to_thread(self._records.refs, rows)
        ready: list[Any] = []
        calls: list[Coroutine[Any, Any, Any]] = []
        for row in rows:
            card, ref = cards.get(row.incident_id), refs.get(row.id)
            if card is None or (kind is MessageKind.UPDATE and ref is None):
                gone = f"incident INC-{row.incident_id}"
                if card is not None:
                    gone = f"card of INC-{row.incident_id} on {row.surface}:{row.channel}"
                await asyncio.to_thread(self._records.finish, row, "sent", f"skipped: no {gone}")
                self._delivered.add(row.id)
                continue
            ready.append(row)
            if ref is None:
                calls.append(surface.post(card, row.channel))
            else:
                calls.append(surface.update(ref, card))
        return ready, calls

    async def _sent(
        self, kind: MessageKind, rows: list[Any], results: list[Any], blocked: set[str]
    ) -> None:
        """Record a batch: the sent ones in one transaction (a post with its card's place),
        each failure as :meth:`_deliver` records it; an unexpected error is raised once the
        rest is recorded."""
        pairs = list(zip(rows, results, strict=True))
        failed = [(r, e) for r, e in pairs if isinstance(e, BaseException)]
        ok = [(r, ref) for r, ref in pairs if not isinstance(ref, BaseException)]
        if kind is MessageKind.POST:
            recorded = await asyncio.to_thread(self._records.save_refs, ok, self._after_post)
        else:
            recorded = await asyncio.to_thread(self._records.sent, [r for r, _ in ok])
        done = {r.id for r in recorded}
        for row, _ in ok:
            if row.id not in done:  # another worker has it now, and records it
                self.claims_lost += 1
                blocked.add(row.order_key)
                continue
            if self.charts is not None and kind is MessageKind.POST:
                self.charts.posted(self._surfaces.get(row.surface), row.incident_id)
            self._delivered.add(row.id)
            age = (self._clock.now() - row.created_at).total_seconds()
            self._on_delivered(row.surface, row.kind, age)
        unexpected: BaseException | None = None
        for row, error in failed:
            if not isinstance(error, Exception):
                unexpected = unexpected or error
                continue
            try:
                if not await self._failed(row, error):
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
