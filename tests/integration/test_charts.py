"""The chart of what a rule saw, where people see it: inline SVG on the console's incident page
(a real rule run over the local backend), one PNG in the Slack card's thread through slack-sdk's
``files_upload_v2`` against the fake (none when the card failed; a missing ``files:write``
scope recorded, not retried), and the Teams card's signed image link."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from bot.charts.png import SIGNATURE
from bot.domain.hits import Hit, SearchQuery
from bot.pipeline.ingest import ingest
from bot.ports import Health
from bot.server import create_app
from bot.settings import load_settings
from bot.store.repo import AUDIT, OUTBOX, TIMELINE
from bot.wiring import Runtime
from integrations.local import LocalSearchBackend
from integrations.local.events import Event, EventStore
from integrations.local.fleet import nginx_access
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.fakes.slack import CHANNEL, SlackBot, slack_bot
from tests.fakes.teams import teams_bot

RULE = "web-5xx-burst"  # shipped: threshold >= 20 events in 5m, grouped by service


def add_bursts(runtime: Runtime, clock: FakeClock) -> None:
    """checkout: an error a minute for 25 minutes from half an hour ago, then 30 in the last 4
    minutes; catalog: 45 in the last 4 minutes (another group, another incident)."""
    assert runtime.event_store is not None
    now = clock.now()
    events = []
    for i in range(25):
        events.append(_error(now - timedelta(minutes=30) + i * timedelta(seconds=60), "checkout"))
    for i in range(30):
        events.append(_error(now - timedelta(minutes=4) + i * timedelta(seconds=7), "checkout"))
    for i in range(45):
        events.append(_error(now - timedelta(minutes=4) + i * timedelta(seconds=5), "catalog"))
    runtime.event_store.add(events)


def _error(at: datetime, service: str) -> Event:
    return nginx_access(
        at,
        "web-1",
        service,
        method="GET",
        path="/cart",
        status=503,
        latency_ms=12,
        client="10.0.0.9",
    )


@asynccontextmanager
async def local_runtime(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    """A runtime over the local backend (shipped rules), leading the schedules."""
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
    )
    runtime = Runtime(settings, clock=clock)
    await runtime.connect(attempts=1)
    assert await runtime.acquire_lease()  # rule runs write under the scheduler lease
    try:
        yield runtime
    finally:
        runtime.engine.dispose()
        if runtime.event_store is not None:
            runtime.event_store.close()


async def test_the_incident_page_shows_the_rules_values_for_its_own_group(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with local_runtime(tmp_path, clock) as runtime:
        add_bursts(runtime, clock)
        created = (await runtime.runner.run(RULE)).result.created
        assert len(created) == 2  # checkout and catalog
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
            pages = [(await client.get(f"/incidents/{i}")).text for i in created]
    checkout = next(p for p in pages if "HTTP 5xx burst on checkout" in p)
    svg = re.search(r"<svg.*?</svg>", checkout, re.DOTALL)
    assert svg is not None, "no chart on the incident page"
    chart = svg.group(0)
    assert 'class="threshold"' in chart and 'data-value="20"' in chart
    found = re.search(r'data-values="([^"]*)"', chart)
    assert found is not None
    values = [int(v) for v in found.group(1).split(",") if v]
    assert max(values) == 30  # checkout's own burst: catalog's 45 are not in it
    assert values[0] == 5  # the half hour before: 1 error a minute, 5 per window
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", chart, re.DOTALL)
    assert desc is not None
    assert "Rule web-5xx-burst (threshold)" in desc.group(1)
    assert "service=checkout" in desc.group(1) and "threshold &gt;= 20" in desc.group(1)
    assert "Fired at" in desc.group(1) and "with 30" in desc.group(1)


async def test_an_aggregating_rule_is_charted_from_one_search_per_point(
    tmp_path: Path, clock: FakeClock
) -> None:
    """high-error-rate: ``stats`` of errors and requests per service, ``where total>=50``, then
    ``error_rate > 5``: each point is the rate a run ending there computed."""
    async with local_runtime(tmp_path, clock) as runtime:
        assert runtime.event_store is not None
        now = clock.now()
        quiet = [  # too few requests to count before the last minutes
            _request(now - timedelta(minutes=30) + i * timedelta(seconds=30), 200)
            for i in range(40)
        ]
        busy = [
            _request(now - timedelta(minutes=4) + i * timedelta(seconds=4), 503 if i % 5 else 200)
            for i in range(60)
        ]
        runtime.event_store.add(quiet + busy)
        (incident,) = (await runtime.runner.run("high-error-rate")).result.created
        chart = await runtime.charts.chart(incident)
    assert (chart.measure, chart.threshold, chart.threshold_label) == (
        "error_rate per 5m",
        5,
        "> 5",
    )
    assert len(chart.points) <= 24
    assert chart.value_at_fire() == 80  # 48 of 60 requests failed
    assert chart.points[0].value is None  # fewer than 50 requests: the query kept no row


def _request(at: datetime, status: int) -> Event:
    return nginx_access(
        at, "web-1", "checkout", method="GET", path="/", status=status, latency_ms=9, client="c"
    )


class HeldSearches:
    """The local backend, its searches held until the test lets them go (a slow Splunk)."""

    def __init__(self, inner: LocalSearchBackend) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.searches = 0

    async def search(self, query: SearchQuery) -> list[Hit]:
        self.searches += 1
        await self.gate.wait()
        return await self.inner.search(query)

    async def check(self) -> Health:
        return await self.inner.check()


async def test_a_chart_nobody_waited_for_is_kept_for_the_next_look(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = EventStore(tmp_path / "events.db")
    held = HeldSearches(LocalSearchBackend(store))
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}", generator=False)
    runtime = Runtime(settings, clock=clock, backend=held)
    await runtime.connect(attempts=1)
    burst = alert(clock.now(), rule=RULE, service="checkout", group=(("service", "checkout"),))
    with runtime.engine.begin() as conn:
        (incident,) = ingest(conn, [burst], clock.now(), console_policy()).created
    try:
        with pytest.raises(TimeoutError):  # the page gives up waiting ...
            async with asyncio.timeout(0.05):
                await runtime.charts.chart(incident)
        held.gate.set()  # ... the search answers later ...
        await asyncio.sleep(0.2)
        chart = await runtime.charts.chart(incident)  # ... and the next look finds the chart
        assert chart.rule_id == RULE and held.searches == 1
    finally:
        runtime.engine.dispose()
        store.close()


# Slack -----------------------------------------------------------------------------------------


async def deliver_until(bot: SlackBot, clock: FakeClock, done: Callable[[], bool]) -> None:
    """Outbox rounds (the clock moving on) until ``done()``; the chart draws meanwhile."""
    for _ in range(200):
        await bot.outbox.deliver_due()
        if done():
            return
        clock.advance(2)
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox did not get there")


def chart_rows(bot: SlackBot) -> list[tuple[str, str]]:
    with bot.runtime.engine.connect() as conn:
        query = select(OUTBOX.c.status, OUTBOX.c.last_error).where(OUTBOX.c.kind == "chart")
        return [(r.status, r.last_error) for r in conn.execute(query)]


async def test_each_slack_thread_gets_one_chart_after_its_card(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with slack_bot(tmp_path, clock) as bot:
        (first,) = bot.open_incidents(1, rule=RULE, group=(("service", "svc-0"),))
        await bot.outbox.deliver_due()  # the card; its chart is drawn meanwhile
        (second,) = bot.open_incidents(1, rule=RULE, group=(("service", "svc-1"),))
        await bot.outbox.deliver_due()  # a waiting chart never holds up the next card
        assert len(bot.fake.calls_to("chat.postMessage")) == 2 and not bot.fake.uploads()
        await deliver_until(bot, clock, lambda: len(bot.fake.uploads()) == 2)
        for _ in range(3):  # later rounds send nothing more
            clock.advance(30)
            await bot.outbox.deliver_due()
        for incident in (first, second):
            (upload,) = bot.fake.uploads(CHANNEL, bot.card_ts(incident))
            assert upload["data"].startswith(SIGNATURE) and upload["name"].endswith(".png")
            assert upload["title"].startswith(f"INC-{incident}: 5xx burst on svc-0 ({RULE})")
            assert "events per 5m" in upload["initial_comment"]
            assert "threshold >= 20" in upload["alt_txt"]
        assert len(bot.fake.uploads()) == 2
        methods = [c.method for c in bot.fake.calls if not c.error]
        assert methods.index("files.getUploadURLExternal") > methods.index("chat.postMessage")
        assert methods.count("files.completeUploadExternal") == 2
        assert chart_rows(bot) == [("sent", ""), ("sent", "")]


async def test_no_chart_when_the_card_failed(tmp_path: Path, clock: FakeClock) -> None:
    async with slack_bot(tmp_path, clock) as bot:
        bot.fake.fail_next("chat.postMessage", "channel_not_found")
        bot.open_incidents(1, rule=RULE, group=(("service", "svc-0"),))
        for _ in range(5):
            await bot.outbox.deliver_due()
            clock.advance(10)
        assert not bot.fake.uploads()
        assert not [c for c in bot.fake.calls if c.method.startswith("files.")]
        assert chart_rows(bot) == []


async def test_a_missing_files_scope_is_recorded_once_and_not_retried(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with slack_bot(tmp_path, clock) as bot:
        bot.fake.missing_scopes.add("files:write")
        (incident,) = bot.open_incidents(1, rule=RULE, group=(("service", "svc-0"),))
        await deliver_until(bot, clock, lambda: any(s == "dead" for s, _ in chart_rows(bot)))
        for _ in range(5):
            clock.advance(600)
            await bot.outbox.deliver_due()
        asked = [c for c in bot.fake.calls if c.method == "files.getUploadURLExternal"]
        assert [c.error for c in asked] == ["missing_scope"]
        ((status, error),) = chart_rows(bot)
        assert status == "dead" and "missing_scope" in error and "files:write" in error
        with bot.runtime.engine.connect() as conn:
            lines = [
                r.text
                for r in conn.execute(select(TIMELINE).where(TIMELINE.c.incident_id == incident))
            ]
            audits = conn.execute(
                select(AUDIT.c.action, AUDIT.c.result, AUDIT.c.detail).where(
                    AUDIT.c.incident_id == incident, AUDIT.c.action == "chart"
                )
            ).all()
        (line,) = [t for t in lines if t.startswith("chart not posted")]
        assert "missing_scope" in line and "needs files:write" in line
        assert [(a.action, a.result) for a in audits] == [("chart", "failed")]
        assert bot.card_ts(incident)  # the card itself is there


async def test_an_upload_host_outage_is_retried_and_still_posts_one_chart(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with slack_bot(tmp_path, clock) as bot:
        bot.fake.fail_next("upload", "", status=503)
        (incident,) = bot.open_incidents(1, rule=RULE, group=(("service", "svc-0"),))
        await deliver_until(bot, clock, lambda: bool(bot.fake.uploads()))
        assert len(bot.fake.uploads(CHANNEL, bot.card_ts(incident))) == 1
        asked = [c for c in bot.fake.calls if c.method == "files.getUploadURLExternal"]
        assert len(asked) == 2  # the first upload URL answered 503: asked again, shared once
        assert chart_rows(bot) == [("sent", "")]


# Teams -----------------------------------------------------------------------------------------


async def test_the_teams_card_image_is_a_signed_expiring_png_link(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with teams_bot(tmp_path, clock, public_url="https://bot.example") as bot:
        await bot.send(bot.activity("conversation_update_team_added"))
        bot.connector.calls.clear()
        burst = alert(clock.now(), rule=RULE, service="checkout", group=(("service", "checkout"),))
        with bot.runtime.engine.begin() as conn:
            (incident,) = ingest(conn, [burst], clock.now(), bot.policy()).created
        await bot.outbox.deliver_due()
        (post,) = bot.connector.of_kind("post")
        assert post.card is not None
        (image,) = [b for b in post.card["body"] if b.get("type") == "Image"]
        link = urlsplit(image["url"])
        assert (link.scheme, link.netloc) == ("https", "bot.example")
        assert link.path == f"/charts/{incident}.png"
        assert image["altText"]
        path = f"{link.path}?{link.query}"

        got = await bot.client.get(path)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert got.content.startswith(SIGNATURE)

        forged = await bot.client.get(path[:-4] + "0000")
        assert forged.status_code == 403
        assert "not signed by this bot" in forged.json()["error"]
        unknown_link = urlsplit(await bot.runtime.charts.image_url(999))
        unknown = await bot.client.get(f"{unknown_link.path}?{unknown_link.query}")
        assert unknown.status_code == 404 and "INC-999" in unknown.json()["error"]

        # a person's own view of the card (Universal Actions refresh) shows the chart too
        refresh = bot.activity("invoke_action_execute", id="f:refresh-1")
        refresh["value"]["action"].update(
            verb="refresh", title="refresh", data={"incident_id": incident, "version": "1"}
        )
        answered = (await bot.send(refresh)).json()["value"]
        (again,) = [b for b in answered["body"] if b.get("type") == "Image"]
        assert urlsplit(again["url"]).path == f"/charts/{incident}.png"

        clock.advance(hours=26)
        expired = await bot.client.get(path)
        assert expired.status_code == 403 and "expired" in expired.json()["error"]
