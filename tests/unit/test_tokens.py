"""The token store (on SQLite and PostgreSQL) and the console session cookie."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from bot.errors import NotFound, PermanentError
from bot.identity.session import SessionSigner
from bot.store import tokens

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_token_is_shown_once_and_stored_as_its_hash(engine: Engine) -> None:
    with engine.begin() as conn:
        made = tokens.create(conn, "alice", "cli:root", NOW)
    assert made.secret.startswith("icb_") and len(made.secret) == 4 + 43
    with engine.connect() as conn:
        row = conn.execute(select(tokens.TOKENS)).one()
        assert row.token_hash == hashlib.sha256(made.secret.encode()).hexdigest()
        assert made.secret not in (row.token_hash, row.prefix) and row.prefix == made.secret[:12]
        found = tokens.find(conn, made.secret)
        assert tokens.find(conn, made.secret + "x") is None
    assert found is not None and (found.id, found.name, found.active) == (
        made.token.id,
        "alice",
        True,
    )
    assert found.created_at == NOW and found.created_by == "cli:root"


def test_tokens_differ_every_time(engine: Engine) -> None:
    with engine.begin() as conn:
        secrets = {tokens.create(conn, "alice", "cli:root", NOW).secret for _ in range(5)}
    assert len(secrets) == 5


def test_revoke_by_id_or_prefix_and_refuse_what_is_ambiguous(engine: Engine) -> None:
    with engine.begin() as conn:
        first = tokens.create(conn, "alice", "cli:root", NOW)
        second = tokens.create(conn, "bob", "cli:root", NOW)
    with engine.begin() as conn:
        for n in (1, 2):  # two tokens whose prefixes start alike
            row = {"name": "twin", "token_hash": f"{n}" * 64, "prefix": f"icb_same{n}xyz"}
            conn.execute(tokens.TOKENS.insert(), [{**row, "created_at": NOW}])
    with engine.connect() as conn:
        with pytest.raises(PermanentError, match="matches tokens 3, 4: name one by its id"):
            tokens.resolve(conn, "icb_same")
        with pytest.raises(PermanentError, match="at least the first 7 characters"):
            tokens.resolve(conn, "icb_")
    with engine.begin() as conn:
        gone = tokens.revoke(conn, first.token.prefix, NOW + timedelta(hours=1))
    assert gone.id == first.token.id and gone.revoked_at == NOW + timedelta(hours=1)
    with engine.connect() as conn:
        assert [t.name for t in tokens.list_tokens(conn)] == ["bob", "twin", "twin"]
        everyone = tokens.list_tokens(conn, include_revoked=True)
        assert [t.active for t in everyone] == [False, True, True, True]
        revoked = tokens.find(conn, first.secret)
        assert revoked is not None and not revoked.active
        with pytest.raises(NotFound, match="no active token"):
            tokens.resolve(conn, str(first.token.id))
        with pytest.raises(PermanentError, match="by its id"):
            tokens.resolve(conn, "alice")
        assert tokens.resolve(conn, str(second.token.id)).name == "bob"


def test_last_use_is_written_at_most_once_a_minute(engine: Engine) -> None:
    with engine.begin() as conn:
        made = tokens.create(conn, "alice", "cli:root", NOW)

    def used() -> datetime | None:
        with engine.connect() as conn:
            found = tokens.find(conn, made.secret)
        assert found is not None
        return found.last_used_at

    with engine.connect() as conn:
        current = tokens.find(conn, made.secret)
    assert current is not None
    tokens.touch(engine, current, NOW)
    assert used() == NOW
    stale = current  # a replica still holding the row read before the first touch
    tokens.touch(engine, stale, NOW + timedelta(seconds=20))
    assert used() == NOW  # the WHERE clause keeps the first write
    with engine.connect() as conn:
        current = tokens.find(conn, made.secret)
    assert current is not None
    tokens.touch(engine, current, NOW + timedelta(seconds=90))
    assert used() == NOW + timedelta(seconds=90)


def test_session_cookies_expire_and_resist_tampering() -> None:
    signer = SessionSigner(b"k" * 32, timedelta(hours=12))
    cookie = signer.issue("alice@example.com", NOW)
    assert signer.holder(cookie, NOW + timedelta(hours=11)) == "alice@example.com"
    assert signer.holder(cookie, NOW + timedelta(hours=12, seconds=1)) is None
    name, expires, mac = cookie.rsplit(":", 2)
    later = str(int(expires) + 86400)
    assert signer.holder(f"{name}:{later}:{mac}", NOW) is None  # extended by hand
    assert signer.holder(cookie.replace("alice", "root"), NOW) is None
    assert SessionSigner(b"x" * 32, timedelta(hours=12)).holder(cookie, NOW) is None
    for junk in ("", "alice", "alice:abc:def", ":1:2"):
        assert signer.holder(junk, NOW) is None
