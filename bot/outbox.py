"""Durable delivery of every outbound message.

Rows are written in the same transaction as the change that causes them (see
``bot.pipeline.ingest`` and ``bot.interactions``). The worker delivers them: cards are rendered
from the database at delivery time (so a burst of changes costs one update), messages of one
card go in order, each (surface, channel) lane has its own token bucket, failures retry with
exponential backoff and jitter (``Retry-After`` honoured), permanent failures stop at ``dead``.

A message's idempotency key is unique: the same change can never enqueue it twice. A crash
after commit and before delivery loses nothing (the row is still pending). A crash in the moment
between a surface accepting a message and the row being marked sent leaves it pending, so that
one message (or the batch of card posts it went out with) may be sent again after a restart
(surfaces that can look up an earlier send by its key avoid even that).

Every replica runs a worker. A worker claims the rows it delivers (``claimed_by``,
``claimed_until``; ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL), always a card's pending
messages from its first one on, so one card's messages go through one worker in order; a claim
that lapses (its worker died) lets another worker deliver. A row is marked sent only while its
claim is still this worker's. Rate budgets are shared by all replicas (``SharedBucket``, and
``SlidingWindow`` where an API states "at most N in any rolling minute"); a message spends its
budget right before its call, since a surface counts requests as they arrive.

Alongside: :mod:`bot.outbox_rows` records each send's outcome, :mod:`bot.outbox_posts` sends
the card posts of a lane in batches (different cards at once), :mod:`bot.outbox_budgets` keeps
the lanes' budgets, :mod:`bot.outbox_digest` the storm digests, :mod:`bot.outbox_pages` sends
pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import configure_mappers

from bot.charts.delivery import CHART, ChartDelivery
from bot.domain.card import CardOptions
from bot.errors import BotError, NotFound, PermanentError, TransientError
from bot.outbox_budgets import LaneBudgets, OverBudget, Spend, spender
from bot.outbox_digest import StormDigests
from bot.outbox_pages import PAGE_KINDS, PageSender
from bot.outbox_posts import POST_BATCH, PostBatching
from bot.outbox_rows import ClaimLost, OutboxRecords
from bot.pipeline.notify import MessageKind, Priority
from bot.ports import ChatSurface, Clock, DigestSurface, DirectSurface, MessageRef, Pager
from bot.ratelimit import Budget
from bot.settings import RateLimit
from bot.store.claims import Claims
from bot.store.repo import OUTBOX

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(seconds=60)
BLOCKED_POLL = 0.25  # due rows all claimed by other workers: look again this soon
CARDS_FIRST = 2.0  # seconds an analysis waits at most for the card posts being sent


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    dead: int
    oldest_age_s: float


def card_order(rows: list[Any]) -> tuple[int, int, int]:
    """A card's place in its lane: a person's action first, then severity, then age."""
    return (min(r.priority for r in rows), min(r.severity_rank for r in rows), rows[0].id)


def urgent(rows: list[Any]) -> bool:
    """A card that goes before the storm digest: a person acted on it, or it is critical."""
    return card_order(rows)[0] == Priority.PERSON or card_order(rows)[1] == 0


class OutboxWorker(PostBatching):
    def __init__(
        self,
        engine: Engine,
        surfaces: Mapping[str, ChatSurface],
        clock: Clock,
        console_url: str | CardOptions,
        rate_limits: Mapping[str, RateLimit] | None = None,
        max_attempts: int = 12,
        on_delivered: Callable[[str, str, float], None] = lambda surface, kind, age: None,
        monotonic: Callable[[], float] | None = None,
        digest_after: Mapping[str, int] | None = None,
        pagers: Mapping[str, Pager] | None = None,
        holder: str = "",
        claim_timeout: timedelta = CLAIM_TIMEOUT,
        on_claimed: Callable[[int], None] = lambda count: None,
    ) -> None:
        """``monotonic`` is the rate budgets' clock in seconds (shared by every replica:
        wall time by default); ``holder`` names this worker in its claims."""
        holder = holder or f"outbox-{id(self):x}"
        self._claims = Claims(engine, holder, claim_timeout, on_claimed)
        self._claim_timeout = claim_timeout
        self._claimed_at: datetime | None = None  # when this round's rows were claimed
        self.post_batch = POST_BATCH
        self.claims_lost = 0
        self._pagers = dict(pagers or {})
        self._delivered: set[int] = set()  # rows delivered in the current round
        self._round_cards: dict[int, asyncio.Future[dict[int, Any]]] = {}
        self._monotonic = monotonic or (lambda: clock.now().timestamp())
        self._engine = engine
        self._surfaces = dict(surfaces)
        self._clock = clock
        self._card_options = (
            console_url if isinstance(console_url, CardOptions) else CardOptions(console_url)
        )
        self._console_url = self._card_options.console_url
        self._budgets = LaneBudgets(engine, rate_limits or {}, self._monotonic)
        self._wake = asyncio.Event()
        self._cards_out = asyncio.Event()  # set: no card post waits for this worker
        self._cards_out.set()
        self._on_delivered = on_delivered
        self._records = OutboxRecords(engine, clock, self._claims, self._card_options, max_attempts)
        self._pages = PageSender(engine, clock, self._console_url, self.wake)
        self._digests = StormDigests(
            engine,
            clock,
            holder,
            self._console_url,
            digest_after or {},
            self._bucket,
            self._monotonic,
            claim_timeout,
        )
        self.charts: ChartDelivery | None = None  # set by the wiring when charts are on

    # public ----------------------------------------------------------------------------------

    @property
    def claims(self) -> int:
        """Rows this worker claimed since start."""
        return self._claims.count

    def wake(self) -> None:
        """New rows were committed: deliver now rather than at the next poll."""
        self._cards_out.clear()  # they may be card posts: the next round tells
        self._wake.set()

    async def cards_out(self, within: float = CARDS_FIRST) -> None:
        """Until no card post is waiting that this worker could send now (a round that sent
        none), or ``within`` seconds: what comes after a card (its analysis) waits for cards."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._cards_out.wait()

    async def run(self, stop: asyncio.Event, poll: float = 1.0) -> None:
        # the ORM's mappers are set up on first use (about a quarter second): before the first
        # card, not during it
        await asyncio.to_thread(configure_mappers)
        while not stop.is_set():
            self._wake.clear()
            try:
                delay = await self.deliver_due()
            except Exception:  # the worker must outlive any bug in one delivery round
                log.exception("outbox round failed; retrying shortly")
                delay = poll
            wait = poll if delay is None else max(0.01, min(poll, delay))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    waiter = asyncio.ensure_future(self._wake.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()
                        stopper.cancel()

    def stats(self) -> OutboxStats:
        with self._engine.connect() as conn:
            pending, oldest = conn.execute(
                select(func.count(), func.min(OUTBOX.c.created_at)).where(
                    OUTBOX.c.status == "pending"
                )
            ).one()
            dead = conn.execute(select(func.count()).where(OUTBOX.c.status == "dead")).scalar_one()
        age = 0.0 if oldest is None else (self._clock.now() - oldest).total_seconds()
        return OutboxStats(int(pending), int(dead), age)

    async def deliver_due(self) -> float | None:
        """Deliver what is due; return seconds until the next row is due (None: nothing)."""
        rows = await asyncio.to_thread(self._due)
        if not rows:
            self._cards_out.set()
            await self._digests.close_idle(self._surfaces)
            nxt = await asyncio.to_thread(self._next_due_in)
            return BLOCKED_POLL if nxt == 0.0 else nxt
        try:
            return await self._deliver_rows(rows)
        finally:
            await asyncio.to_thread(self._release)
            posted = any(r.kind == MessageKind.POST.value and r.id in self._delivered for r in rows)
            if not posted:
                self._cards_out.set()

    async def _deliver_rows(self, rows: list[Any]) -> float:
        self._delivered.clear()
        self._round_cards = {}
        lanes: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            lanes.setdefault((row.surface, row.channel), []).append(row)
        waits: list[float] = []
        # pages first: paging never waits on chat, and a card then shows its page's link
        paging = {k: v for k, v in lanes.items() if any(r.kind in PAGE_KINDS for r in v)}
        for batch in (paging, {k: v for k, v in lanes.items() if k not in paging}):
            async with asyncio.TaskGroup() as group:
                for lane, lane_rows in batch.items():
                    group.create_task(self._deliver_lane(lane, lane_rows, waits))
        # a channel whose backlog is gone while others still have rows
        await self._digests.close_idle(self._surfaces, lanes)
        return min(waits) if waits else 0.0

    # internals -------------------------------------------------------------------------------

    def _due(self) -> list[Any]:
        now = self._clock.now()
        self._claimed_at = now
        return self._claims.claim(now)

    def _release(self) -> None:
        self._claims.release()

    def _next_due_in(self) -> float | None:
        return self._claims.next_due_in(self._clock.now())

    def _bucket(self, surface: str, channel: str, kind: str) -> Budget | None:
        return self._budgets.of(surface, channel, kind)

    async def _deliver_lane(
        self, lane: tuple[str, str], rows: list[Any], waits: list[float]
    ) -> None:
        surface_name = lane[0]
        blocked: set[str] = set()
        spent: set[int] = set()  # buckets found empty this round
        now = self._clock.now()
        # cards with a person's action first, then most severe first; one card's messages in
        # id order (a person's reply still follows the post it replies to)
        by_card: dict[str, list[Any]] = {}
        for row in sorted(rows, key=lambda r: r.id):
            by_card.setdefault(row.order_key, []).append(row)
        ordered = sorted(by_card.values(), key=card_order)
        surface = self._surfaces.get(surface_name)
        digest = self._digests.covers(surface_name, surface)
        critical = [rs for rs in ordered if urgent(rs)]
        others = [rs for rs in ordered if not urgent(rs)]
        # people's actions and critical cards first, then the storm digest (ahead of routine
        # card updates, within the same budget), then everything else as budget allows
        await self._deliver_cards(lane, critical, now, blocked, spent, waits)
        if digest:
            assert isinstance(surface, DigestSurface)
            await self._digests.refresh(surface, lane, waits)
        await self._deliver_cards(lane, others, now, blocked, spent, waits)

    async def _deliver_cards(
        self,
        lane: tuple[str, str],
        ordered: list[list[Any]],
        now: datetime,
        blocked: set[str],
        spent: set[int],
        waits: list[float],
    ) -> None:
        surface_name, channel = lane
        firsts = [
            rows[0]
            for rows in ordered
            if rows[0].kind in (MessageKind.POST.value, MessageKind.UPDATE.value)
            and rows[0].next_attempt_at <= now
            and rows[0].order_key not in blocked
        ]
        if firsts and surface_name in self._surfaces:
            await self._send_cards(lane, firsts, blocked, spent, waits)
        for card_rows in ordered:
            for row in card_rows:
                if row.id in self._delivered:  # sent with other cards' messages
                    continue
                if row.order_key in blocked:
                    break
                if row.next_attempt_at > now:
                    blocked.add(row.order_key)
                    waits.append((row.next_attempt_at - now).total_seconds())
                    break
                bucket = self._bucket(surface_name, channel, row.kind)
                if bucket is not None and id(bucket) in spent:
                    break
                try:
                    ok = await self._deliver(row, spender(bucket))
                except OverBudget as over:
                    spent.add(id(bucket))
                    waits.append(over.wait)
                    break
                if not ok:
                    blocked.add(row.order_key)
                    break

    async def _deliver(self, row: Any, spend: Spend) -> bool:
        surface: Any = self._surfaces.get(row.surface)
        if row.kind in PAGE_KINDS:
            surface = self._pagers.get(row.surface)
        if surface is None:
            await asyncio.to_thread(
                self._records.finish,
                row,
                "dead",
                f"no surface named {row.surface!r} is configured",
            )
            return False
        if not await self._still_mine([row], set()):
            return False  # held up past the claim timeout: another worker has it
        try:
            recorded = await self._send(surface, row, spend)
        except ClaimLost:
            self.claims_lost += 1
            log.warning(
                "outbox %s to %s:%s: claim lapsed during the send; another worker has it",
                row.kind,
                row.surface,
                row.channel,
            )
            return False
        except (BotError, OSError, TimeoutError) as exc:
            return await self._failed(row, exc)
        if not recorded:
            await asyncio.to_thread(self._records.finish, row, "sent", "")
        self._delivered.add(row.id)
        age = (self._clock.now() - row.created_at).total_seconds()
        self._on_delivered(row.surface, row.kind, age)
        return True

    async def _failed(self, row: Any, exc: Exception) -> bool:
        """Record a failed send: retried later (a peer's ``Retry-After`` pauses the lane's
        budget too), skipped (True: its card has nothing to send), or dead for good. Errors
        other than a surface's are raised again."""
        if isinstance(exc, TransientError):
            if exc.retry_after is not None:
                bucket = self._bucket(row.surface, row.channel, row.kind)
                if bucket is not None:
                    await asyncio.to_thread(bucket.pause, exc.retry_after)
            await asyncio.to_thread(self._records.retry, row, str(exc), exc.retry_after)
            return False
        if isinstance(exc, NotFound):
            await asyncio.to_thread(self._records.finish, row, "sent", f"skipped: {exc}")
            return True
        if isinstance(exc, PermanentError):
            log.warning(
                "outbox %s to %s:%s failed for good: %s", row.kind, row.surface, row.channel, exc
            )
            await asyncio.to_thread(self._records.finish, row, "dead", str(exc))
            return False
        if isinstance(exc, (BotError, OSError, TimeoutError)):
            await asyncio.to_thread(self._records.retry, row, f"{type(exc).__name__}: {exc}", None)
            return False
        raise exc

    async def _send(self, surface: Any, row: Any, spend: Spend) -> bool:
        """Deliver one message, spending its budget (``spend``) right before the call; True
        when its row was already marked sent (with the card's reference, in one transaction)."""
        if row.kind == CHART:  # the card's chart, after it (bot.charts.delivery)
            if self.charts is None:
                raise NotFound("charts are not set up")
            return await self.charts.send(surface, row, spend)
        kind = MessageKind(row.kind)
        if kind in PAGE_KINDS:
            await self._pages.send(surface, row, kind, spend)
            return False
        if kind is MessageKind.POST:
            card = await asyncio.to_thread(self._records.card, row.incident_id)
            await spend()
            ref = await surface.post(card, row.channel)
            await asyncio.to_thread(self._records.save_ref, row, ref, self._after_post)
            if self.charts is not None:
                self.charts.posted(surface, row.incident_id)  # starts drawing its chart
            return True
        if kind is MessageKind.DIRECT:
            if not isinstance(surface, DirectSurface):
                raise PermanentError(f"{row.surface} cannot send direct messages")
            await spend()
            await surface.direct(row.channel, json.loads(row.payload_json).get("text", ""))
            return False
        ref = await asyncio.to_thread(self._records.ref, row)
        if ref is None:
            raise NotFound(f"no card of INC-{row.incident_id} on {row.surface}:{row.channel}")
        if kind is MessageKind.UPDATE:
            card = await asyncio.to_thread(self._records.card, row.incident_id)
            await spend()
            await surface.update(ref, card)
        else:
            text = json.loads(row.payload_json).get("text", "")
            await spend()
            await surface.reply(ref, text)
        return False

    def _after_post(self, conn: Any, row: Any, ref: MessageRef, now: datetime) -> None:
        """In the transaction that records a card's post: its chart's message follows it."""
        if self.charts is not None:
            self.charts.after_post(conn, row, ref, self._surfaces.get(row.surface), now)
