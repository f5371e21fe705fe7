"""The outbox's records of each message: the card it renders, the card's place on a surface,
and the outcome of a send (sent, dead, or retried later with backoff and jitter).

Every write is conditional on this worker's claim on the row (``Claims.mine``): a worker whose
claim lapsed records nothing, and the worker that has the row now records its outcome.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, update
from sqlalchemy.orm import Session

from bot.domain.card import CardOptions
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

    def ref(self, row: Any) -> MessageRef | None:
        """Where the row's card is on its surface (None: it was never posted)."""
        with self._engine.connect() as conn:
            return card_ref(conn, row)

    def save_ref(self, row: Any, ref: MessageRef, after_post: AfterPost | None = None) -> None:
        """The card's post is sent: record it and where the card is, in one transaction
        (``after_post`` adds to it, with the same time); raises :class:`ClaimLost` when the
        row is not this worker's any more."""
        now = self._clock.now()
        with self._engine.begin() as conn:
            done = conn.execute(
                update(OUTBOX)
                .where(self._claims.mine(row.id))
                .values(status="sent", sent_at=now, attempts=row.attempts + 1)
            )
            if done.rowcount == 0:  # rolls back: the worker that has the row records its card
                raise ClaimLost(f"outbox row {row.id}")
            conn.execute(
                CARD_REFS.delete().where(
                    CARD_REFS.c.incident_id == row.incident_id,
                    CARD_REFS.c.surface == row.surface,
                    CARD_REFS.c.channel == row.channel,
                )
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
                ],
            )
            if after_post is not None:
                after_post(conn, row, ref, now)

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
