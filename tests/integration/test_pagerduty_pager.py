"""PagerDutyPager through the real python-pagerduty client against the TLS fake."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.domain.hits import Severity
from bot.domain.page import Page
from bot.errors import PermanentError, TransientError
from bot.outbox import OutboxWorker
from bot.pipeline.escalate import EscalationPolicy, EscalationRule
from bot.pipeline.ingest import ingest
from bot.ports import HealthStatus
from bot.store.repo import INCIDENTS, OUTBOX
from integrations.pagerduty import PagerDutyPager, PagerDutySettings
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.fakes.pagerduty import FakePagerDuty, Tls, make_tls
from tests.fakes.surface import RecordingSurface

DB_KEY = "R0UT1NGKEYDB00000000000000000001"
WEB_KEY = "R0UT1NGKEYWEB0000000000000000002"
TOKEN = "fake-rest-api-token-0123456789"
SECRETS = (DB_KEY, WEB_KEY, TOKEN)


def open_critical(engine: Engine, clock: FakeClock) -> int:
    """A critical incident, paged at once on channel oncall-db."""
    paging = EscalationPolicy("pagerduty", (EscalationRule(timedelta(0), "oncall-db"),))
    policy = replace(console_policy(), escalation=paging)
    with engine.begin() as conn:
        found = ingest(conn, [alert(clock.now(), severity=Severity.CRITICAL)], clock.now(), policy)
    return found.created[0]


def page(key: str = "incident-bot/INC-7/3f1c2a9b8d7e6f50", **changes: object) -> Page:
    base = Page(
        dedup_key=key,
        summary="[CRITICAL] INC-7 5xx burst on checkout",
        severity="critical",
        source="web-1",
        component="checkout",
        group="application",
        kind="web-5xx",
        details={"incident": "INC-7", "events": "12"},
        links=(("Incident in the console", "http://bot.test/incidents/7"),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("pd-tls"))


@pytest.fixture
def fake(tls: Tls) -> Iterator[FakePagerDuty]:
    with FakePagerDuty(tls, api_token=TOKEN) as server:
        yield server


def settings(fake: FakePagerDuty, rest: bool = True, **overrides: object) -> PagerDutySettings:
    values: dict[str, object] = {
        "routing_key": DB_KEY,
        "routing_keys": {"oncall-web": WEB_KEY, "oncall-db": DB_KEY},
        "events_url": fake.url,
        "api_url": fake.url,
        "ca_file": fake.tls.ca_file,
        "from_email": "bot@example.com",
        "lookup_timeout": 1.0,
    }
    if rest:
        values["api_token"] = TOKEN
    values.update(overrides)
    return PagerDutySettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_pager() -> Iterator[object]:
    made: list[PagerDutyPager] = []

    def build(config: PagerDutySettings) -> PagerDutyPager:
        made.append(PagerDutyPager(config))
        return made[-1]

    yield build
    for pager in made:
        pager.close()


async def test_trigger_sends_the_page_and_links_the_pagerduty_incident(
    fake: FakePagerDuty, make_pager
) -> None:
    pager = make_pager(settings(fake))
    ref = await pager.trigger(page(), "default")
    [event] = fake.accepted()
    assert event.routing_key == DB_KEY and event.action == "trigger"
    assert event.dedup_key == "incident-bot/INC-7/3f1c2a9b8d7e6f50" == ref.key
    payload = event.body["payload"]
    assert payload == {
        "summary": "[CRITICAL] INC-7 5xx burst on checkout",
        "source": "web-1",
        "severity": "critical",
        "component": "checkout",
        "group": "application",
        "class": "web-5xx",
        "custom_details": {"incident": "INC-7", "events": "12"},
    }
    assert event.body["links"] == [
        {"href": "http://bot.test/incidents/7", "text": "Incident in the console"}
    ]
    assert event.body["client"] == "incident-bot"
    assert ref.url == fake.incident(ref.key).html_url and ref.url.startswith("https://")


async def test_without_a_rest_token_the_page_has_no_link(fake: FakePagerDuty, make_pager) -> None:
    ref = await make_pager(settings(fake, rest=False)).trigger(page(), "default")
    assert ref.url == "" and len(fake.accepted("trigger")) == 1
    assert not any(path.startswith("/incidents") for _, path in fake.requests)


async def test_acknowledge_and_resolve_name_the_same_page_and_retriggers_do_not_duplicate(
    fake: FakePagerDuty, make_pager
) -> None:
    pager = make_pager(settings(fake))
    first = await pager.trigger(page(), "default")
    again = await pager.trigger(page(), "default")  # a retry after a crash
    await pager.acknowledge(first.key, "default")
    await pager.resolve(first.key, "default")
    assert first == again
    assert [(e.action, e.dedup_key) for e in fake.accepted()] == [
        ("trigger", first.key),
        ("trigger", first.key),
        ("acknowledge", first.key),
        ("resolve", first.key),
    ]
    assert len(fake.incidents) == 1 and fake.incidents[0].status == "resolved"


async def test_a_long_summary_is_cut_to_pagerdutys_limit(fake: FakePagerDuty, make_pager) -> None:
    long = "x" * 5000
    await make_pager(settings(fake, rest=False)).trigger(page(summary=long), "default")
    [event] = fake.accepted()
    assert event.body["payload"]["summary"] == "x" * 1024


async def test_two_routing_keys_by_channel_and_an_unknown_channel_is_refused(
    fake: FakePagerDuty, make_pager
) -> None:
    pager = make_pager(settings(fake, rest=False))
    await pager.trigger(page("incident-bot/INC-1/aaaaaaaaaaaaaaaa"), "default")
    await pager.trigger(page("incident-bot/INC-2/bbbbbbbbbbbbbbbb"), "oncall-web")
    await pager.resolve("incident-bot/INC-2/bbbbbbbbbbbbbbbb", "oncall-web")
    with pytest.raises(PermanentError, match=r"'oncall-dba'.*PAGERDUTY_ROUTING_KEYS"):
        await pager.trigger(page(), "oncall-dba")
    assert [(e.routing_key, e.action) for e in fake.events] == [
        (DB_KEY, "trigger"),
        (WEB_KEY, "trigger"),
        (WEB_KEY, "resolve"),
    ]


async def test_a_refused_event_is_permanent_with_pagerdutys_message_and_sent_once(
    fake: FakePagerDuty, make_pager, caplog: pytest.LogCaptureFixture
) -> None:
    bad_key = "SHORTKEY0000000000000000000000"  # 30 characters
    pager = make_pager(settings(fake, rest=False, routing_key=bad_key))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentError) as refused:
        await pager.trigger(page(), "default")
    text = str(refused.value)
    assert text.startswith("PagerDuty refused trigger of incident-bot/INC-7/")
    assert "(HTTP 400): Event object is invalid; Length of 'routing_key' is incorrect" in text
    assert bad_key not in text and bad_key not in caplog.text
    assert len(fake.events) == 1  # the client did not retry it


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, 7.0, 7.0), (429, None, None), (500, None, None), (503, 30.0, 30.0)],
)
async def test_throttling_and_server_errors_are_transient_and_left_to_the_outbox(
    fake: FakePagerDuty, make_pager, status: int, retry_after: float | None, expected: float | None
) -> None:
    pager = make_pager(settings(fake, rest=False))
    fake.fail_next(status, retry_after=retry_after)
    with pytest.raises(TransientError) as failed:
        await pager.acknowledge("incident-bot/INC-7/3f1c2a9b8d7e6f50", "default")
    assert failed.value.retry_after == expected
    assert f"(HTTP {status})" in str(failed.value)
    assert len(fake.events) == 1  # one attempt: the SDK's own retry loop is off


async def test_fakes_own_rate_limit_answers_429(tls: Tls, make_pager) -> None:
    with FakePagerDuty(tls, rate_limit=3, window=60) as fake:
        pager = make_pager(settings(fake, rest=False))
        for n in range(3):
            await pager.trigger(page(f"incident-bot/INC-{n}/aaaaaaaaaaaaaaaa"), "default")
        with pytest.raises(TransientError, match="rate limited \\(HTTP 429\\): Requests for"):
            await pager.trigger(page(), "default")
        await pager.trigger(page(), "oncall-web")  # another routing key has its own budget
    assert [e.status for e in fake.events] == [202, 202, 202, 429, 202]


async def test_the_pagers_own_budget_per_routing_key(fake: FakePagerDuty, make_pager) -> None:
    # 6 a minute: a burst of 1, then one every 12 s (never 7 in a rolling minute)
    pager = make_pager(settings(fake, rest=False, events_per_minute=6))
    await pager.acknowledge("incident-bot/INC-1/aaaaaaaaaaaaaaaa", "default")
    with pytest.raises(TransientError, match="over 6/min") as over:
        await pager.acknowledge("incident-bot/INC-99/aaaaaaaaaaaaaaaa", "default")
    assert over.value.retry_after is not None and 10 < over.value.retry_after <= 12
    assert len(fake.events) == 1  # refused before it reached PagerDuty


async def test_unreachable_and_untrusted_pagerduty_are_transient(
    fake: FakePagerDuty, make_pager, tmp_path: Path
) -> None:
    other = make_tls(tmp_path)  # a CA the fake's certificate does not chain to
    untrusted = make_pager(settings(fake, rest=False, ca_file=other.ca_file))
    with pytest.raises(TransientError, match="TLS certificate not trusted; set PAGERDUTY_CA_FILE"):
        await untrusted.trigger(page(), "default")
    gone = make_pager(settings(fake, rest=False, events_url="https://127.0.0.1:9"))
    with pytest.raises(TransientError, match="cannot reach PagerDuty"):
        await gone.trigger(page(), "default")
    assert fake.events == []


async def test_no_secret_in_any_error_or_log_line(
    fake: FakePagerDuty, make_pager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pager = make_pager(settings(fake, api_token="wrong-token-wrong-token-0000"))
    texts = []
    for status in (400, 429, 500):
        fake.fail_next(status)
        with pytest.raises((TransientError, PermanentError)) as failed:
            await pager.trigger(page(), "oncall-web")
        texts.append(str(failed.value))
    ref = await pager.trigger(page(), "default")  # the REST lookup is refused: no link, no error
    health = await pager.check()
    texts.append(health.reason)
    assert ref.url == "" and health.status is HealthStatus.DEGRADED
    assert "(HTTP 401)" in health.reason and "PAGERDUTY_API_TOKEN" in health.reason
    for secret in (*SECRETS, "wrong-token-wrong-token-0000"):
        assert all(secret not in t for t in texts)
        assert secret not in caplog.text
        assert secret[-4:] not in " ".join(texts)  # not even the SDK's "*abcd" hint


async def test_check_reports_configuration_and_the_rest_api(
    fake: FakePagerDuty, make_pager
) -> None:
    assert (await make_pager(settings(fake)).check()).status is HealthStatus.OK
    events_only = await make_pager(settings(fake, rest=False)).check()
    assert events_only.status is HealthStatus.OK and "no REST token" in events_only.reason
    broken = await make_pager(settings(fake, routing_key="short")).check()
    assert broken.status is HealthStatus.DOWN
    assert "PAGERDUTY_ROUTING_KEY: must be 32 characters" in broken.reason
    assert not any(e.action for e in fake.events)  # the Events API was never called


async def test_notes_are_marked_and_sent_from_the_configured_user(
    fake: FakePagerDuty, make_pager
) -> None:
    pager = make_pager(settings(fake))
    ref = await pager.trigger(page(), "default")
    await pager.note(ref.key, "root cause: a bad deploy")
    assert fake.notes == [
        (fake.incident(ref.key).id, "bot@example.com", "[incident-bot] root cause: a bad deploy")
    ]


async def test_through_the_outbox_a_refusal_stops_and_a_throttle_retries(
    sqlite_engine: Engine, clock: FakeClock, fake: FakePagerDuty, make_pager
) -> None:
    open_critical(sqlite_engine, clock)
    keys = {"oncall-db": DB_KEY, "oncall-bad": "SHORTKEY0000000000000000000000"}
    pager = make_pager(settings(fake, routing_keys=keys))
    box = OutboxWorker(
        sqlite_engine,
        {"console": RecordingSurface()},
        clock,
        "http://bot.test",
        pagers={"pagerduty": pager},
    )
    fake.fail_next(429, retry_after=20)
    await box.deliver_due()
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(OUTBOX).where(OUTBOX.c.surface == "pagerduty")).one()
    assert row.status == "pending" and "HTTP 429" in row.last_error
    assert (row.next_attempt_at - clock.now()).total_seconds() == pytest.approx(20)
    clock.advance(seconds=21)
    await box.deliver_due()
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(OUTBOX).where(OUTBOX.c.surface == "pagerduty")).one()
        incident = conn.execute(select(INCIDENTS)).one()
    assert row.status == "sent" and [e.status for e in fake.events] == [429, 202]
    assert incident.page_url == fake.incident(incident.page_ref).html_url

    with sqlite_engine.begin() as conn:  # a page on a channel whose key PagerDuty refuses
        conn.execute(
            OUTBOX.insert().values(
                {
                    **row._asdict(),
                    "id": None,
                    "idempotency_key": "page:resolve:oncall-bad:1:x",
                    "channel": "oncall-bad",
                    "order_key": "pagerduty:oncall-bad:1",
                    "kind": "resolve",
                    "status": "pending",
                    "attempts": 0,
                    "last_error": "",
                }
            )
        )
    await box.deliver_due()
    await box.deliver_due()
    with sqlite_engine.connect() as conn:
        dead = conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "resolve")).one()
    assert dead.status == "dead" and "HTTP 400" in dead.last_error
    assert "Length of 'routing_key' is incorrect" in dead.last_error
    assert [e.status for e in fake.events] == [429, 202, 400]  # not retried
