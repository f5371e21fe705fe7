"""Similar past incidents from a real database (SQLite and PostgreSQL): the card's line, the
incident page's top 3 (with how each ended), incremental indexing as incidents resolve, and a
rebuild."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from bot.api import incident_detail
from bot.domain.card import CardOptions
from bot.similar.service import Similar
from bot.similar.store import SIMILAR_DOCS
from bot.store import audit
from bot.store.cards import load_card
from bot.store.repo import INCIDENTS
from bot.store.tables import PlaybookRunRow

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RUNS = PlaybookRunRow.__table__  # type: ignore[attr-defined]
WEB = (
    ('<TIME> host=web-<NUM> status=503 msg="no live upstreams while connecting to upstream"', 40),
    ("<TIME> app-<NUM> ERROR connection pool exhausted: <NUM> of <NUM> in use", 8),
)
DISK = (("<TIME> db-<NUM> disk /var used <NUM>% of <NUM> GB, filling", 12),)


def rca(templates: tuple[tuple[str, int], ...], summary: str) -> str:
    return json.dumps(
        {"status": "ok", "summary": summary, "templates": [list(t) for t in templates]}
    )


def seed(
    engine: Engine,
    number: int,
    rule: str,
    templates: tuple[tuple[str, int], ...],
    summary: str,
    opened: timedelta,
    minutes: int | None,
    by: str = "slack:U1",
    host: str = "web-1",
) -> None:
    start = T0 + opened
    with engine.begin() as conn:
        conn.execute(
            INCIDENTS.insert().values(
                id=number,
                group_key=f"{rule}|{number}",
                active_key=None if minutes is not None else f"{rule}|{number}",
                rule_id=rule,
                title=f"{rule} on {host}",
                severity="high",
                category="application",
                service="checkout",
                host=host,
                state="resolved" if minutes is not None else "open",
                state_changed_by=by if minutes is not None else "",
                resolved_at=start + timedelta(minutes=minutes) if minutes is not None else None,
                created_at=start,
                updated_at=start,
                first_seen=start,
                last_seen=start,
                rca_json=rca(templates, summary),
                labels_json=json.dumps({"host": host, "env": "prod"}),
            )
        )


def resolve_with_note(engine: Engine, number: int, note: str, playbook: str = "") -> None:
    with engine.begin() as conn:
        at = conn.execute(select(INCIDENTS.c.resolved_at).where(INCIDENTS.c.id == number)).scalar()
        audit.append(
            conn,
            [
                {
                    "at": at,
                    "actor": "slack:U1",
                    "surface": "slack",
                    "action": "resolve",
                    "incident_id": number,
                    "before_state": "open",
                    "after_state": "resolved",
                    "reason": note,
                    "result": "applied",
                }
            ],
        )
        if playbook:
            conn.execute(
                RUNS.insert().values(
                    incident_id=number,
                    playbook_id=playbook,
                    status="succeeded",
                    created_at=at,
                    updated_at=at,
                )
            )


def history(engine: Engine) -> None:
    """Three past 5xx bursts (one fixed by a playbook), a disk alert, and a new 5xx burst."""
    seed(engine, 810, "web-5xx", WEB, "upstream pool exhausted", -timedelta(days=9), 25, "bob")
    seed(engine, 811, "disk-full", DISK, "/var filling on db-1", -timedelta(days=4), 3, "bot")
    seed(engine, 812, "web-5xx", WEB, "upstream pool exhausted", -timedelta(days=3), 6, "bot")
    seed(engine, 813, "web-5xx", WEB[:1], "no live upstreams", -timedelta(days=1), 14, "carol")
    resolve_with_note(engine, 812, "recycled the web tier", playbook="restart-web")
    resolve_with_note(engine, 810, "raised the pool size")
    seed(engine, 900, "web-5xx", WEB, "upstream pool exhausted", timedelta(0), None, host="web-4")


def card_line(engine: Engine, number: int) -> str:
    options = CardOptions("http://console", similar=Similar(engine).card_line)
    with Session(engine) as session:
        return load_card(session, number, options).similar_line


def test_the_card_names_the_closest_past_incident_and_how_it_ended(engine: Engine) -> None:
    history(engine)
    assert card_line(engine, 900) == (
        "Like INC-812 (3 days ago, resolved by restart-web in 6 min) and 2 more"
    )


def test_the_incident_page_lists_the_top_three_with_how_each_ended(engine: Engine) -> None:
    history(engine)
    similar = incident_detail(engine, 900)["similar"]
    assert [s["id"] for s in similar] == ["INC-812", "INC-810", "INC-813"]
    first, second, third = similar
    assert first["playbook"] == "restart-web"
    assert first["note"] == "recycled the web tier"
    assert first["minutes_to_resolve"] == 6
    assert second["resolved_by"] == "bob" and second["note"] == "raised the pool size"
    assert second["minutes_to_resolve"] == 25
    assert third["playbook"] == "" and third["resolved_by"] == "carol"
    assert 0 < third["similarity"] < second["similarity"] <= first["similarity"] <= 1
    assert all(s["id"] != "INC-811" for s in similar)  # the disk alert is not like a 5xx burst


def test_no_line_when_nothing_alike_has_resolved(engine: Engine) -> None:
    seed(engine, 811, "disk-full", DISK, "/var filling on db-1", -timedelta(days=4), 3, "bot")
    seed(engine, 900, "web-5xx", WEB, "upstream pool exhausted", timedelta(0), None)
    assert card_line(engine, 900) == ""
    assert incident_detail(engine, 900)["similar"] == []


def test_incidents_are_indexed_as_they_resolve_and_stored(engine: Engine) -> None:
    history(engine)
    similar = Similar(engine)
    with engine.connect() as conn:
        assert similar.matches(conn, 900)[0].human_id == "INC-812"
    seed(engine, 814, "web-5xx", WEB, "upstream pool exhausted", timedelta(hours=-2), None)
    with engine.begin() as conn:  # INC-814 resolves after the index was built
        conn.execute(
            update(INCIDENTS)
            .where(INCIDENTS.c.id == 814)
            .values(
                state="resolved",
                active_key=None,
                state_changed_by="dave",
                resolved_at=T0 - timedelta(hours=1),
            )
        )
    with engine.connect() as conn:  # renders take new resolutions in every few seconds
        assert similar.matches(conn, 900)[0].human_id == "INC-812"
    assert similar.catch_up() == 1
    with engine.connect() as conn:
        assert similar.matches(conn, 900)[0].human_id == "INC-814"
        stored = conn.execute(select(func.count()).select_from(SIMILAR_DOCS)).scalar()
    assert stored == 5
    # a fresh process loads the stored documents and answers the same
    assert card_line(engine, 900) == "Like INC-814 (2 h ago, resolved by dave in 60 min) and 2 more"


def test_rebuild_recomputes_every_document(engine: Engine) -> None:
    history(engine)
    similar = Similar(engine)
    assert similar.catch_up() == 4
    with engine.begin() as conn:
        conn.execute(update(SIMILAR_DOCS).values(document="rule:stale"))
    assert similar.rebuild() == 4
    with engine.connect() as conn:
        docs = [r.document for r in conn.execute(select(SIMILAR_DOCS))]
        assert all("rule:stale" not in d for d in docs)
        assert similar.matches(conn, 900)[0].human_id == "INC-812"


def test_a_replica_takes_in_what_another_one_indexed(engine: Engine) -> None:
    history(engine)
    here, there = Similar(engine), Similar(engine)  # two processes on one database
    assert there.catch_up() == 4  # stores the four documents
    assert here.catch_up() == 0  # loads them: nothing left to index
    assert here.size == 4
    seed(engine, 814, "web-5xx", WEB, "upstream pool exhausted", timedelta(hours=-2), None)
    with engine.begin() as conn:
        conn.execute(
            update(INCIDENTS)
            .where(INCIDENTS.c.id == 814)
            .values(state="resolved", active_key=None, resolved_at=T0 - timedelta(hours=1))
        )
    assert there.catch_up() == 1
    assert here.catch_up() == 1
    with engine.connect() as conn:
        found = here.matches(conn, 900)
    assert [m.human_id for m in found] == ["INC-814", "INC-812", "INC-810"]
