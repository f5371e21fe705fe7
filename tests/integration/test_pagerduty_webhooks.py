"""Signed PagerDuty webhooks into a real Runtime (SQLite), and the whole paging loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bot.domain.hits import Severity
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.server import create_app
from bot.settings import load_settings
from bot.store.repo import AUDIT, INCIDENTS, OUTBOX, TIMELINE
from bot.store.tables import WebhookEventRow
from bot.wiring import Runtime
from integrations.pagerduty.webhooks import handled, remember
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.pagerduty import FakePagerDuty, Tls, make_tls, webhook_body, webhook_headers

DB_KEY = "R0UT1NGKEYDB00000000000000000001"
TOKEN = "fake-rest-api-token-0123456789"
SECRET = "whsec-current-0123456789abcdef"
OLD_SECRET = "whsec-previous-0123456789abcdef"
WEBHOOKS = WebhookEventRow.__table__  # type: ignore[attr-defined]
ESCALATION = [
    {"after": "0s", "severity": ["critical"], "routing": "oncall-db"},
    {"after": "never"},
]


@dataclass
class Bot:
    http: httpx.AsyncClient
    runtime: Runtime
    fake: FakePagerDuty

    def open_incident(self, severity: Severity = Severity.CRITICAL) -> int:
        clock = self.runtime.clock
        policy = IngestPolicy(
            self.runtime.router,
            self.runtime.settings.flap_window,
            self.runtime.settings.card_refresh,
            escalation=self.runtime.escalation,
        )
        with self.runtime.engine.begin() as conn:
            made = ingest(conn, [alert(clock.now(), severity=severity)], clock.now(), policy)
        return made.created[0]

    async def deliver(self) -> None:
        await self.runtime.outbox.deliver_due()
        await self.runtime.outbox.deliver_due()

    async def post(self, body: bytes, *secrets: str, webhook_id: str = "") -> httpx.Response:
        headers = webhook_headers(body, *secrets, webhook_id=webhook_id)
        return await self.http.post("/webhooks/pagerduty", content=body, headers=headers)

    def incident(self, number: int = 1):  # type: ignore[no-untyped-def]
        with self.runtime.engine.connect() as conn:
            return conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == number)).one()

    def rows(self, table, **where: object) -> list:  # type: ignore[no-untyped-def,type-arg]
        query = select(table).where(*(table.c[k] == v for k, v in where.items()))
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(query.order_by(table.c[next(iter(table.c.keys()))])))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("pd-tls"))


@pytest.fixture
async def bot(
    tmp_path: Path, clock: FakeClock, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Bot]:
    """The bot as a deployment configures it: PAGERDUTY_* settings in the environment."""
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        escalation=ESCALATION,
    )
    with FakePagerDuty(tls, api_token=TOKEN) as fake:
        for name, value in {
            "PAGERDUTY_ROUTING_KEYS": json.dumps({"oncall-db": DB_KEY}),
            "PAGERDUTY_EVENTS_URL": fake.url,
            "PAGERDUTY_API_URL": fake.url,
            "PAGERDUTY_API_TOKEN": TOKEN,
            "PAGERDUTY_FROM_EMAIL": "bot@example.com",
            "PAGERDUTY_CA_FILE": str(tls.ca_file),
            "PAGERDUTY_WEBHOOK_SECRETS": f"{SECRET},{OLD_SECRET}",
        }.items():
            monkeypatch.setenv(name, value)
        runtime = Runtime(config, clock=clock)
        assert "pagerduty" in runtime.pagers and runtime.card_options.escalate
        await runtime.connect(attempts=1)
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
            yield Bot(http, runtime, fake)
        for pager in runtime.pagers.values():
            getattr(pager, "close", lambda: None)()
        runtime.engine.dispose()
        if runtime.event_store is not None:
            runtime.event_store.close()


async def paged(bot: Bot) -> str:
    """Open a critical incident and deliver its page; the page's dedup key."""
    bot.open_incident()
    await bot.deliver()
    [trigger] = bot.fake.accepted("trigger")
    return trigger.dedup_key


async def test_an_acknowledgement_in_pagerduty_acknowledges_our_incident_once(bot: Bot) -> None:
    key = await paged(bot)
    body = bot.fake.webhook("incident.acknowledged", key, agent=("PLH1HKV", "Ann Example"))
    first = await bot.post(body, SECRET)
    again = await bot.post(body, SECRET)  # PagerDuty delivers again
    assert first.status_code == 200
    assert first.json() == {
        "status": "applied",
        "incident": "INC-1",
        "message": "acknowledged by pagerduty:PLH1HKV",
    }
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    incident = bot.incident()
    assert incident.state == "acknowledged" and incident.state_changed_by == "pagerduty:PLH1HKV"
    acks = bot.rows(TIMELINE, kind="acknowledge")
    assert [(t.actor, t.surface) for t in acks] == [("pagerduty:PLH1HKV", "pagerduty")]
    assert [(a.actor, a.result) for a in bot.rows(AUDIT)] == [("pagerduty:PLH1HKV", "applied")]
    # the change came from PagerDuty: nothing goes back to it; the card is refreshed
    assert [r.kind for r in bot.rows(OUTBOX, surface="pagerduty")] == ["trigger"]
    assert "update" in [r.kind for r in bot.rows(OUTBOX, surface="console", status="pending")]
    assert len(bot.rows(WEBHOOKS)) == 1


async def test_resolve_reassign_and_notes_from_pagerduty(bot: Bot) -> None:
    key = await paged(bot)
    bob = ("PQ8B2ZD", "Bob Example")
    reassigned = await bot.post(
        bot.fake.webhook("incident.reassigned", key, assignees=[bob]), SECRET
    )
    noted = await bot.post(
        bot.fake.webhook("incident.annotated", key, agent=bob, note="Rolled back the deploy"),
        SECRET,
    )
    resolved = await bot.post(bot.fake.webhook("incident.resolved", key, agent=bob), SECRET)
    assert [r.json()["status"] for r in (reassigned, noted, resolved)] == ["applied"] * 3
    incident = bot.incident()
    assert incident.assignee == "Bob Example" and incident.state == "resolved"
    lines = [(t.kind, t.text) for t in bot.rows(TIMELINE, surface="pagerduty")]
    assert lines == [
        ("assign", "assigned to Bob Example by pagerduty:PLH1HKV"),
        ("comment", "pagerduty:PQ8B2ZD: Rolled back the deploy"),
        ("resolve", "resolved by pagerduty:PQ8B2ZD"),
    ]
    await bot.deliver()
    assert [e.action for e in bot.fake.accepted()] == ["trigger"]  # no echo


async def test_signatures_rotation_forgery_and_missing(bot: Bot) -> None:
    key = await paged(bot)
    body = bot.fake.webhook("incident.acknowledged", key)
    missing = await bot.post(body)
    forged = await bot.post(body, "not-the-secret")
    tampered = await bot.http.post(  # signed, then changed on the way
        "/webhooks/pagerduty",
        content=body.replace(b"PLH1HKV", b"PEVIL00"),
        headers=webhook_headers(body, SECRET),
    )
    assert [r.status_code for r in (missing, forged, tampered)] == [401, 401, 401]
    assert missing.json() == {"error": "X-PagerDuty-Signature is missing"}
    assert forged.json() == {"error": "X-PagerDuty-Signature does not match any configured secret"}
    assert bot.incident().state == "open" and bot.rows(WEBHOOKS) == []
    # during a rotation PagerDuty signs with both secrets; a bot that knows either accepts
    rotated = await bot.post(body, "a-secret-we-never-had", OLD_SECRET)
    assert rotated.status_code == 200 and rotated.json()["status"] == "applied"


async def test_events_that_change_nothing_answer_200(bot: Bot) -> None:
    key = await paged(bot)
    await bot.http.post(
        "/api/v1/incidents/INC-1/commands", json={"command": "acknowledge"}
    )  # acknowledged here first; PagerDuty then reports the same
    echo = await bot.post(bot.fake.webhook("incident.acknowledged", key), SECRET)
    assert echo.json() == {
        "status": "ignored",
        "incident": "INC-1",
        "reason": "already acknowledged",
    }
    other = bot.fake.incidents[0].json() | {"incident_key": "another-system/alert-42", "id": "QX"}
    theirs = await bot.post(webhook_body("incident.resolved", other), SECRET)
    assert theirs.json() == {"status": "ignored", "reason": "not an incident of this bot"}
    forged_key = other | {"incident_key": "incident-bot/INC-1/0000000000000000"}
    lookalike = await bot.post(webhook_body("incident.resolved", forged_key), SECRET)
    assert lookalike.json()["reason"] == "not an incident of this bot"
    ping = webhook_body("pagey.ping", {"message": "Hello from your friend Pagey!", "type": "ping"})
    pinged = await bot.post(ping, SECRET)
    assert pinged.status_code == 200 and pinged.json()["status"] == "ignored"
    ours = await bot.post(
        bot.fake.webhook("incident.annotated", key, note="[incident-bot] x"), SECRET
    )
    assert ours.json() == {"status": "ignored", "reason": "a note the bot wrote"}
    assert bot.incident().state == "acknowledged"
    assert [a.actor for a in bot.rows(AUDIT)] == ["console:local"]  # nothing refused, no noise


async def test_bad_bodies_are_refused_clearly(bot: Bot) -> None:
    not_json = await bot.post(b"{not json", SECRET)
    assert not_json.status_code == 400 and "not a PagerDuty v3 webhook" in not_json.json()["error"]
    no_id = webhook_body("incident.resolved", {"type": "incident", "id": "Q1"}, event_id=" ")
    assert (await bot.post(no_id.replace(b'"id": " "', b'"id": ""'), SECRET)).status_code == 400
    by_header = await bot.post(no_id.replace(b'"id": " "', b'"id": ""'), SECRET, webhook_id="hdr-1")
    assert by_header.status_code == 200 and bot.rows(WEBHOOKS)[0].event_id == "hdr-1"
    huge = b'{"event": {"id": "x", "pad": "' + b"x" * 2_000_000 + b'"}}'
    assert (await bot.post(huge, SECRET)).status_code == 413


async def test_the_paging_loop(bot: Bot) -> None:
    """Critical incident → page → acknowledged in PagerDuty → card refreshed → resolved in the
    API → exactly one resolve reaches PagerDuty."""
    number = bot.open_incident()
    await bot.deliver()
    [trigger] = bot.fake.accepted()
    incident = bot.incident(number)
    assert trigger.routing_key == DB_KEY and trigger.dedup_key == incident.page_ref
    assert trigger.body["payload"]["severity"] == "critical"
    assert incident.page_url == bot.fake.incident(incident.page_ref).html_url

    before = {r.id for r in bot.rows(OUTBOX, surface="console")}
    ack = await bot.post(bot.fake.webhook("incident.acknowledged", trigger.dedup_key), SECRET)
    assert ack.json()["status"] == "applied" and bot.incident(number).state == "acknowledged"
    queued = [r for r in bot.rows(OUTBOX, surface="console") if r.id not in before]
    assert {r.kind for r in queued} == {"update", "reply"}
    await bot.deliver()
    assert {r.status for r in bot.rows(OUTBOX)} == {"sent"}

    done = await bot.http.post(
        f"/api/v1/incidents/INC-{number}/commands", json={"command": "resolve", "note": "fixed"}
    )
    assert done.status_code == 200
    await bot.deliver()
    await bot.deliver()
    assert [(e.action, e.dedup_key) for e in bot.fake.accepted()] == [
        ("trigger", trigger.dedup_key),
        ("resolve", trigger.dedup_key),
    ]
    assert bot.fake.incident(trigger.dedup_key).status == "resolved"
    # PagerDuty then reports the resolve it was sent: already true, nothing changes
    echo = await bot.post(bot.fake.webhook("incident.resolved", trigger.dedup_key), SECRET)
    assert echo.json()["reason"] == "already resolved"
    with bot.runtime.engine.connect() as conn:
        pages = conn.execute(
            select(func.count()).where(OUTBOX.c.surface == "pagerduty")
        ).scalar_one()
    assert pages == 2


def test_handled_event_ids_are_kept_once_on_both_databases(
    engine: Engine, clock: FakeClock
) -> None:
    assert not handled(engine, "01ABC")
    remember(engine, "01ABC", clock.now())
    remember(engine, "01ABC", clock.now())  # a racing redelivery: no error, still one row
    assert handled(engine, "01ABC") and not handled(engine, "01ABD")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(WEBHOOKS)).scalar_one() == 1


async def test_the_card_shows_the_page_link_and_who_is_on_call(bot: Bot) -> None:
    bot.fake.oncall["PUS0KTE"] = [("Ann Example", 1), ("Bob Example", 2)]
    await paged(bot)
    incident = bot.incident()
    assert incident.page_url.startswith("https://")
    assert incident.oncall == "On call: Ann Example (L1), Bob Example (L2)"
    card = await bot.runtime.operations.card(1)
    assert incident.oncall in card.status_line
    assert ("Page", incident.page_url) in [(link.label, link.url) for link in card.links]


async def test_every_incident_pagerduty_grouped_follows_its_incident(bot: Bot) -> None:
    """Alert grouping on: three of our pages become alerts of one PagerDuty incident, whose
    webhooks name only the first page's key; all three incidents follow it."""
    bot.fake.grouping = True
    clock = bot.runtime.clock
    policy = IngestPolicy(
        bot.runtime.router,
        bot.runtime.settings.flap_window,
        bot.runtime.settings.card_refresh,
        escalation=bot.runtime.escalation,
    )
    services = ("checkout", "payments", "search")
    with bot.runtime.engine.begin() as conn:
        alerts = [alert(clock.now(), service=s, severity=Severity.CRITICAL) for s in services]
        made = ingest(conn, alerts, clock.now(), policy)
    assert len(made.created) == 3
    await bot.deliver()
    [grouped] = bot.fake.incidents
    keys = [bot.incident(n).page_ref for n in made.created]
    assert grouped.alerts == keys and grouped.incident_key == keys[0]

    ack = await bot.post(bot.fake.webhook("incident.acknowledged", keys[0]), SECRET)
    assert ack.json() == {
        "status": "applied",
        "incident": "INC-1",
        "message": "acknowledged by pagerduty:PLH1HKV",
        "grouped": "INC-2 applied, INC-3 applied",
    }
    assert [bot.incident(n).state for n in made.created] == ["acknowledged"] * 3
    # one of them was resolved here first; PagerDuty's resolve moves the other two
    await bot.http.post("/api/v1/incidents/INC-2/commands", json={"command": "resolve"})
    resolved = await bot.post(bot.fake.webhook("incident.resolved", keys[0]), SECRET)
    assert resolved.json()["grouped"] == "INC-2 ignored, INC-3 applied"
    assert [bot.incident(n).state for n in made.created] == ["resolved"] * 3
    timeline = [(t.incident_id, t.kind) for t in bot.rows(TIMELINE, surface="pagerduty")]
    assert sorted(timeline) == [
        (1, "acknowledge"),
        (1, "resolve"),
        (2, "acknowledge"),
        (3, "acknowledge"),
        (3, "resolve"),
    ]
    await bot.deliver()
    # nothing echoes back but the resolve made in the API
    assert [(e.action, e.dedup_key) for e in bot.fake.accepted()][3:] == [("resolve", keys[1])]
    assert ("GET", f"/incidents/{grouped.id}/alerts?limit=100&offset=0") in bot.fake.requests


async def test_a_comment_here_becomes_a_note_on_the_pagerduty_incident(bot: Bot) -> None:
    key = await paged(bot)
    said = await bot.http.post(
        "/api/v1/incidents/INC-1/commands",
        json={"command": "comment", "text": "Rolling back build 4812"},
    )
    assert said.status_code == 200
    [note] = bot.rows(OUTBOX, surface="pagerduty", kind="note")
    assert note.status == "pending" and note.channel == "oncall-db"
    await bot.deliver()
    pd_incident = bot.fake.incident(key)
    assert bot.fake.notes == [
        (pd_incident.id, "bot@example.com", "[incident-bot] console:local: Rolling back build 4812")
    ]
    assert bot.rows(OUTBOX, surface="pagerduty", kind="note")[0].status == "sent"
    # PagerDuty announces the note it was given: marked as ours, not taken back in
    echo = await bot.post(
        bot.fake.webhook("incident.annotated", key, note=bot.fake.notes[0][2]), SECRET
    )
    assert echo.json() == {"status": "ignored", "reason": "a note the bot wrote"}
    # a note made in PagerDuty is a comment here, and is not sent back as a note
    theirs = await bot.post(bot.fake.webhook("incident.annotated", key, note="DB failover"), SECRET)
    assert theirs.json()["status"] == "applied"
    await bot.deliver()
    assert len(bot.fake.notes) == 1
    assert [r.kind for r in bot.rows(OUTBOX, surface="pagerduty")] == ["trigger", "note"]
