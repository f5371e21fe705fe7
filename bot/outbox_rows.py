"""The outbox's records of each message: the card it renders, the card's place on a surface,
and the outcome of a send (sent, dead, or retried later with backoff and jitter).

Every write is conditional on this worker's claim on the row (``Claims.mine``): a worker whose
claim lapsed records nothing, and the worker that has the row now records its outcome.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, update
from sqlalchemy.orm import Session

from bot.domain.card import CardOptions
from bot.errors import NotFound
from bot.ports import Clock, MessageRef
from bot.store.cards import load_card
from bot.store.claims import Claims
from bot.store.repo import CARD_REFS, OUTBOX, card_ref

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0

AfterPost = Callable[[Connection, Any, MessageRef, datetime], None]


class ClaimLost(Exception):
    """This worker's claim on a row lapsed and another worker took it over."""


def backoff(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: 1 s, 2 s, 4 s … capped at five minutes."""
    ceiling = min(MAX_BACKOFF, 2.0 ** max(attempts - 1, 0))
    return ceiling / 2 + rng.random() * ceiling / 2


def gave_up(row: Any, attempts: int, error: str) -> str:
    return (
        f"outbox {row.kind} to {row.surface}:{row.channel} gave up after {attempts} attempts: "
        f"{error}"
    )


class OutboxRecords:
    """Blocking (run each call in a worker thread)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        claims: Claims,
        card_options: CardOptions,
        max_attempts: int,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._claims = claims
        self._card_options = card_options
        self._max_attempts = max_attempts
        self._rng = random.Random()

    def card(self, incident_id: int) -> Any:
        with Session(self._engine) as session:
            return load_card(session, incident_id, self._card_options)

    def cards(self, incident_ids: Sequence[int]) -> dict[int, Any]:
        """Several incidents' cards, read in one session (an incident gone is left out)."""
        out: dict[int, Any] = {}
        with Session(self._engine) as session:
            for incident_id in dict.fromkeys(incident_ids):
                try:
                    out[incident_id] = load_card(session, incident_id, self._card_options)
                except NotFound:
                    continue
        return out

    def ref(self, row: Any) -> MessageRef | None:
        """Where the row's card is on its surface (None: it was never posted)."""
        with self._engine.connect() as conn:
            return card_ref(conn, row)

    def save_ref(self, row: Any, ref: MessageRef, after_post: AfterPost | None = None) -> None:
        """The card's post is sent: record it and where the card is, in one transaction
        (``after_post`` adds to it, with the same time); raises :class:`ClaimLost` when the
        row is not this worker's any more."""
        if not self.save_refs([(row, ref)], after_post):  # nothing written: it rolled back
            raise ClaimLost(f"outbox row {row.id}")

    def save_refs(
        self, posted: Sequence[tuple[Any, MessageRef]], after_post: AfterPost | None = None
    ) -> list[Any]:
        """Several posts sent at once, recorded in one transaction as :meth:`save_ref` records
        one; answers the rows recorded (a row no longer this worker's is left to the worker
        that has it, with its card's place)."""
        if not posted:
            return []
        now = self._clock.now()
        recorded: list[Any] = []
        with self._engine.begin() as conn:
            ids = [row.id for row, _ in posted]
            mine = self._claims.held(conn, ids)
            sent = [(row, ref) for row, ref in posted if row.id in mine]
            if not sent:
                return []
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == bindparam("b_id"))
                .values(status="sent", sent_at=now, attempts=bindparam("b_attempts")),
                [{"b_id": row.id, "b_attempts": row.attempts + 1} for row, _ in sent],
            )
            conn.execute(
                CARD_REFS.delete().where(
                    CARD_REFS.c.incident_id == bindparam("b_incident"),
                    CARD_REFS.c.surface == bindparam("b_surface"),
                    CARD_REFS.c.channel == bindparam("b_channel"),
                ),
                [
                    {"b_incident": r.incident_id, "b_surface": r.surface, "b_channel": r.channel}
                    for r, _ in sent
                ],
            )
            conn.execute(
                CARD_REFS.insert(),
                [
                    {
                        "incident_id": row.incident_id,
                        "surface": row.surface,
                        "channel": row.channel,
                        "message_id": ref.message_id,
                        "ref_channel": ref.channel,
                        "created_at": now,
                    }
                    for row, ref in sent
                ],
            )
            for row, ref in sent:
                if after_post is not None:
                    after_post(conn, row, ref, now)
                recorded.append(row)
        return recorded

    def refs(self, rows: Sequence[Any]) -> dict[int, MessageRef]:
        """Where each row's card is on its surface, by row id (a card never posted is left
        out), read on one connection."""
        out: dict[int, MessageRef] = {}
        with self._engine.connect() as conn:
            for row in rows:
                ref = card_ref(conn, row)
                if ref is not None:
                    out[row.id] = ref
        return out

    def sent(self, rows: Sequence[Any]) -> list[Any]:
        """Several messages sent at once, marked sent in one transaction; answers the rows
        recorded (a row no longer this worker's is left to the worker that has it)."""
        if not rows:
            return []
        now = self._clock.now()
        with self._engine.begin() as conn:
            mine = self._claims.held(conn, [r.id for r in rows])
            recorded = [r for r in rows if r.id in mine]
            if recorded:
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == bindparam("b_id"))
                    .values(
                        status="sent",
                        sent_at=now,
                        attempts=bindparam("b_attempts"),
                        last_error="",
                    ),
                    [{"b_id": r.id, "b_attempts": r.attempts + 1} for r in recorded],
                )
        return recorded

    def finish(self, row: Any, status: str, error: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(self._claims.mine(row.id))
                .values(
                    status=status,
                    sent_at=self._clock.now() if status == "sent" else None,
                    attempts=row.attempts + 1,
                    last_error=error,
                )
            )

    def retry(self, row: Any, error: str, retry_after: float | None) -> None:
        """Try again after ``retry_after`` (the peer said so) or a backoff; dead after the
        last attempt."""
        attempts = row.attempts + 1
        if attempts >= self._max_attempts:
            log.warning(gave_up(row, attempts, error))
            self.finish(row, "dead", error)
            return
        delay = retry_after if retry_after is not None else backoff(attempts, self._rng)
        with self._engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(self._claims.mine(row.id))
                .values(
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=self._clock.now() + timedelta(seconds=delay),
                    claimed_by="",
                    claimed_until=None,
                )
            )
