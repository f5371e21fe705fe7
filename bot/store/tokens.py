"""Personal API tokens: each acts as one identity; only the token's SHA-256 is stored.

A token is ``icb_`` followed by 32 random bytes (URL-safe base64). It is shown once, when it is
created; the database keeps its hash, a short prefix to tell tokens apart in listings, who made
it and when it was last used. A revoked token stays in the table for the record.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update

from bot.errors import NotFound, PermanentError
from bot.store.tables import ApiTokenRow

TOKENS = ApiTokenRow.__table__  # type: ignore[attr-defined]
SCHEME = "icb_"
PREFIX_LENGTH = 12  # "icb_" and 8 characters: enough to tell tokens apart, useless to guess
#: last_used_at is written at most this often per token (one small write, not one per request)
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: ``secret`` is the only copy of the token and is shown once."""

    token: ApiToken
    secret: str


def looks_like_token(value: str) -> bool:
    return value.startswith(SCHEME)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite hands back naive UTC values


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=_aware(row.created_at) or row.created_at,
        created_by=row.created_by,
        last_used_at=_aware(row.last_used_at),
        revoked_at=_aware(row.revoked_at),
    )


def create(conn: Connection, name: str, created_by: str, now: datetime) -> NewToken:
    """Make a token acting as ``name``; the caller shows ``secret`` once and forgets it."""
    secret = SCHEME + secrets.token_urlsafe(32)
    row = {
        "name": name,
        "token_hash": token_hash(secret),
        "prefix": secret[:PREFIX_LENGTH],
        "created_at": now,
        "created_by": created_by,
        "last_used_at": None,
        "revoked_at": None,
    }
    token_id = conn.execute(TOKENS.insert().returning(TOKENS.c.id), [row]).scalar_one()
    made = ApiToken(token_id, name, secret[:PREFIX_LENGTH], now, created_by, None, None)
    return NewToken(made, secret)


def list_tokens(conn: Connection, include_revoked: bool = False) -> list[ApiToken]:
    query = select(TOKENS).order_by(TOKENS.c.id)
    if not include_revoked:
        query = query.where(TOKENS.c.revoked_at.is_(None))
    return [_token(r) for r in conn.execute(query)]


def find(conn: Connection, secret: str) -> ApiToken | None:
    """The token with this secret, revoked or not; None when no such token was ever made."""
    row = conn.execute(select(TOKENS).where(TOKENS.c.token_hash == token_hash(secret))).first()
    return None if row is None else _token(row)


def touch(engine: Engine, token: ApiToken, now: datetime) -> None:
    """Record a use, at most once per :data:`TOUCH_EVERY` (the WHERE clause keeps it cheap
    and correct when several replicas see the same token at once)."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    with engine.begin() as conn:
        conn.execute(
            update(TOKENS)
            .where(TOKENS.c.id == token.id)
            .where(or_(TOKENS.c.last_used_at.is_(None), TOKENS.c.last_used_at < now - TOUCH_EVERY))
            .values(last_used_at=now)
        )


def resolve(conn: Connection, id_or_prefix: str) -> ApiToken:
    """One active token by its id (``7``) or by the start of its prefix (``icb_Zx3``)."""
    text = id_or_prefix.strip()
    if text.isdigit():
        query = select(TOKENS).where(TOKENS.c.id == int(text))
    elif looks_like_token(text) and len(text) >= len(SCHEME) + 3:
        query = select(TOKENS).where(TOKENS.c.prefix.startswith(text[:PREFIX_LENGTH]))
    else:
        raise PermanentError(
            f"{id_or_prefix!r}: name a token by its id (see 'tokens list') "
            f"or by at least the first {len(SCHEME) + 3} characters of its prefix"
        )
    rows = [_token(r) for r in conn.execute(query.where(TOKENS.c.revoked_at.is_(None)))]
    if not rows:
        raise NotFound(f"no active token {id_or_prefix!r} (see 'tokens list')")
    if len(rows) > 1:
        ids = ", ".join(str(t.id) for t in rows)
        raise PermanentError(f"{id_or_prefix!r} matches tokens {ids}: name one by its id")
    return rows[0]


def revoke(conn: Connection, id_or_prefix: str, now: datetime) -> ApiToken:
    token = resolve(conn, id_or_prefix)
    conn.execute(update(TOKENS).where(TOKENS.c.id == token.id).values(revoked_at=now))
    return replace(token, revoked_at=now)
