"""The Splunk backend end to end: the real splunk-sdk against the loopback fake of splunkd."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from bot.domain.hits import SearchQuery
from bot.errors import BotError, PermanentError, TransientError
from bot.ports import HealthStatus, SearchBackend
from detectors.rules import load_rules
from detectors.runner import run_rule
from detectors.window import Window
from integrations.local import Event
from integrations.local.scenarios import SCENARIOS
from integrations.splunk import (
    SplunkAuthError,
    SplunkSearchBackend,
    SplunkSearchError,
    SplunkSettings,
    SplunkTimeout,
    SplunkTlsError,
    SplunkUnavailable,
)
from tests.fakes.splunk import FakeSplunk
from tests.fakes.tls import Tls, make_tls

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
EARLIEST = NOW - timedelta(minutes=5)
TOKEN = "tok-9f2c41d7e3b8a6"
PASSWORD = "pw-5e7a13c9d2f4"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SPLUNK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> Iterator[FakeSplunk]:
    with FakeSplunk(token=TOKEN, username="svc-bot", password=PASSWORD) as server:
        server.add_events(web_events())
        yield server


def web_events() -> list[Event]:
    """12 nginx lines over the last five minutes: 5 of them 5xx (3 on web-1, 2 on web-2)."""
    statuses = [200, 502, 200, 503, 200, 200, 504, 200, 500, 200, 503, 200]
    return [
        Event(
            time=NOW - timedelta(seconds=20 * i + 5),
            raw=f'status={status} uri=/api/cart msg="req {i}"',
            index="web",
            host=f"web-{1 + i % 2}",
            sourcetype="nginx:access",
        )
        for i, status in enumerate(statuses)
    ]


def settings(fake: FakeSplunk, **overrides: Any) -> SplunkSettings:
    values: dict[str, Any] = {
        "host": fake.host,
        "port": fake.port,
        "scheme": fake.scheme,
        "token": TOKEN,
        "search_timeout": 10,
    }
    values.update(overrides)
    return SplunkSettings(**values)


def backend(fake: FakeSplunk, **overrides: Any) -> SplunkSearchBackend:
    return SplunkSearchBackend(settings(fake, **overrides))


def query(text: str = "index=web status>=500", max_results: int = 10_000) -> SearchQuery:
    return SearchQuery(text=text, earliest=EARLIEST, latest=NOW, max_results=max_results)


@dataclass(frozen=True, slots=True)
class JobQuery(SearchQuery):
    """A query carrying the ``mode`` field SearchQuery is gaining."""

    mode: str = "job"


# searching -------------------------------------------------------------------------------------


async def test_token_auth_exports_the_query_over_its_window_in_epoch_seconds(
    fake: FakeSplunk,
) -> None:
    splunk = backend(fake)
    assert isinstance(splunk, SearchBackend)

    hits = await splunk.search(query())

    assert sorted(h.fields["status"] for h in hits) == ["500", "502", "503", "503", "504"]
    newest = hits[0]
    assert newest.time == NOW - timedelta(seconds=25)
    assert newest.raw == 'status=502 uri=/api/cart msg="req 1"'
    assert newest.fields["host"] == "web-2" and newest.fields["index"] == "web"
    [export] = fake.searches()
    assert export.path == "/search/v2/jobs/export"
    assert export.namespace == "nobody/search"
    assert export.params["search"] == "search index=web status>=500"
    assert export.params["output_mode"] == "json"
    assert export.params["earliest_time"] == str(int(EARLIEST.timestamp()))
    assert export.params["latest_time"] == str(int(NOW.timestamp()))
    assert export.authorization == f"Bearer {TOKEN}"
    assert fake.logins == 0


async def test_password_auth_logs_in_once_and_searches_with_the_session_key(
    fake: FakeSplunk,
) -> None:
    splunk = backend(fake, token=None, username="svc-bot", password=PASSWORD)

    first = await splunk.search(query())
    second = await splunk.search(query("index=web host=web-1 status>=500"))

    assert len(first) == 5 and len(second) == 3
    assert fake.logins == 1
    assert all(r.authorization.startswith("Splunk ") for r in fake.searches())


async def test_a_normal_job_gives_the_same_hits_as_export(fake: FakeSplunk) -> None:
    splunk = backend(fake, app="ops", owner="svc-bot")

    exported = await splunk.search(query())
    from_job = await splunk.search(query(), mode="job")
    from_field = await splunk.search(JobQuery("index=web status>=500", EARLIEST, NOW, 10_000))

    assert from_job == exported == from_field
    created = [r for r in fake.requests if r.method == "POST" and r.path == "/search/v2/jobs"]
    assert len(created) == 2
    assert created[0].namespace == "svc-bot/ops"
    assert created[0].params["exec_mode"] == "normal"
    assert created[0].params["earliest_time"] == str(int(EARLIEST.timestamp()))
    results = [r for r in fake.requests if r.path.endswith("/results")]
    assert results[0].params["count"] == "10000"


async def test_generating_commands_are_sent_as_written(fake: FakeSplunk) -> None:
    hits = await backend(fake).search(query("| makeresults count=1"))

    assert len(hits) == 1
    assert fake.searches()[0].params["search"] == "| makeresults count=1"


async def test_preview_rows_are_dropped(fake: FakeSplunk) -> None:
    hits = await backend(fake).search(query("index=web status>=500 | stats count by host"))

    assert {h.fields["host"]: h.fields["count"] for h in hits} == {"web-1": "3", "web-2": "2"}
    assert hits[0].raw == "count=3 host=web-1"
    assert hits[0].time == NOW  # aggregated rows have no _time: the window end


async def test_results_stop_at_the_cap_and_the_stream_is_closed_early(fake: FakeSplunk) -> None:
    fake.add_events(
        Event(time=NOW - timedelta(milliseconds=10 * i + 5), raw=f"status=500 n={i} " + "x" * 300)
        for i in range(20_000)
    )
    splunk = backend(fake, max_results=150)

    capped_by_rule = await splunk.search(query("status=500", max_results=100))
    capped_by_settings = await splunk.search(query("status=500", max_results=1_000))

    assert len(capped_by_rule) == 100 and len(capped_by_settings) == 150
    assert [h.fields["n"] for h in capped_by_rule[:3]] == ["0", "1", "2"]  # newest first
    await wait_until(lambda: all(e.abandoned for e in fake.exports))
    assert all(e.written < e.rows == 20_001 for e in fake.exports)
    assert splunk.counters.capped == 2


# Splunk's messages and HTTP errors --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["export", "job"])
@pytest.mark.parametrize("level", ["FATAL", "ERROR"])
async def test_error_messages_become_the_rules_error_with_splunks_text(
    fake: FakeSplunk, mode: str, level: str
) -> None:
    fake.fatal("Unknown search command 'foo'.", level=level)

    with pytest.raises(PermanentError) as failed:
        await backend(fake).search(query("index=web"), mode=mode)  # type: ignore[arg-type]

    assert str(failed.value) == "Splunk: Unknown search command 'foo'."
    assert len(fake.searches()) == 1  # not retried


async def test_a_query_splunk_cannot_parse_fails_at_once_with_its_reason(
    fake: FakeSplunk,
) -> None:
    splunk = backend(fake)

    with pytest.raises(SplunkSearchError, match=r"^Splunk: Error in 'SearchParser': .*"):
        await splunk.search(query("index=web | transaction host"))

    assert len(fake.searches()) == 1
    assert splunk.counters.errors == {"search": 1}


async def test_a_401_connects_again_once_and_the_search_goes_through(fake: FakeSplunk) -> None:
    splunk = backend(fake)
    await splunk.search(query())
    fake.fail_next(401)

    hits = await splunk.search(query())

    assert len(hits) == 5
    assert splunk.counters.relogins == 1
    assert len(fake.searches()) == 3


async def test_a_second_401_is_a_clear_credentials_error_and_check_is_degraded(
    fake: FakeSplunk,
) -> None:
    splunk = backend(fake, token=None, username="svc-bot", password=PASSWORD)
    await splunk.search(query())
    fake.fail_next(401, count=2)

    with pytest.raises(SplunkAuthError) as refused:
        await splunk.search(query())
    health = await splunk.check()

    assert str(refused.value).startswith(
        "Splunk rejected the credentials (401): check SPLUNK_USERNAME and SPLUNK_PASSWORD"
    )
    assert fake.logins == 2  # the first login, then exactly one more
    assert len(fake.searches()) == 3
    assert health.status is HealthStatus.DEGRADED
    assert "Splunk rejected the credentials (401)" in health.reason
    await splunk.search(query())
    assert (await splunk.check()).status is HealthStatus.OK


async def test_a_rejected_token_is_reported_by_search_and_check(fake: FakeSplunk) -> None:
    splunk = backend(fake, token="not-the-token")

    with pytest.raises(SplunkAuthError, match=r"check SPLUNK_TOKEN"):
        await splunk.search(query())
    health = await splunk.check()

    assert health.status is HealthStatus.DOWN
    assert health.reason.startswith("Splunk rejected the credentials (401): check SPLUNK_TOKEN")


async def test_503_is_retried_with_backoff_then_succeeds(fake: FakeSplunk) -> None:
    splunk = backend(fake)
    await splunk.search(query())
    fake.fail_next(503, count=2)

    started = time.monotonic()
    hits = await splunk.search(query())

    assert len(hits) == 5
    assert splunk.counters.retries == 2
    assert time.monotonic() - started >= 0.125 + 0.25  # at least half of each backoff step


async def test_503_that_persists_gives_up_after_three_attempts(fake: FakeSplunk) -> None:
    splunk = backend(fake)
    await splunk.search(query())
    fake.fail_next(503, count=5)

    with pytest.raises(TransientError, match=r"answered 503"):
        await splunk.search(query())

    assert len(fake.searches()) == 1 + 3
    assert splunk.counters.errors == {"unavailable": 1}


# time and concurrency ---------------------------------------------------------------------------


async def test_a_slow_export_times_out_and_its_stream_is_closed(fake: FakeSplunk) -> None:
    fake.delay = 30
    splunk = backend(fake, search_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(SplunkTimeout, match=r"timed out after 0.5s \(SPLUNK_SEARCH_TIMEOUT\)"):
        await splunk.search(query())

    assert time.monotonic() - started < 3
    await wait_until(lambda: bool(fake.exports) and fake.exports[-1].abandoned)
    assert splunk.counters.active == 0


async def test_a_slow_job_times_out_and_is_cancelled(fake: FakeSplunk) -> None:
    fake.delay = 30
    splunk = backend(fake, search_timeout=0.5)

    with pytest.raises(SplunkTimeout):
        await splunk.search(query(), mode="job")

    created = [r for r in fake.requests if r.path == "/search/v2/jobs"]
    assert len(created) == 1
    assert len(fake.cancelled) == 1  # cancelled before the error was raised
    assert any(r.path.endswith(f"/{fake.cancelled[0]}/control") for r in fake.requests)


async def test_never_more_than_max_concurrent_searches(fake: FakeSplunk) -> None:
    fake.delay = 0.2
    splunk = backend(fake, max_concurrent=3)

    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(splunk.search(query())) for _ in range(10)]

    assert all(len(run.result()) == 5 for run in runs)
    assert fake.max_concurrent_seen == 3
    assert splunk.counters.max_active == 3 and splunk.counters.started == 10


@pytest.mark.parametrize("mode", ["export", "job"])
async def test_a_full_search_quota_is_a_transient_error_with_splunks_reason(
    fake: FakeSplunk, mode: str
) -> None:
    fake.max_jobs = 1  # the role's srchJobsQuota, smaller than SPLUNK_MAX_CONCURRENT
    fake.delay = 5
    splunk = backend(fake, max_concurrent=3)
    holder = asyncio.create_task(splunk.search(query(), mode="job"))
    await wait_until(lambda: len(fake.searches()) == 1)

    with pytest.raises(SplunkUnavailable) as refused:
        await splunk.search(query(), mode=mode)  # type: ignore[arg-type]
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)

    text = str(refused.value)
    assert "answered 503 Service Unavailable" in text
    assert "maximum number of concurrent historical searches for this user" in text
    assert "concurrency_limit=1" in text
    assert fake.ledger.totals().refused == 3  # retried with backoff, as a transient failure
    assert splunk.counters.errors == {"unavailable": 1}


async def test_a_search_refused_by_the_quota_runs_once_a_place_frees_up(
    fake: FakeSplunk,
) -> None:
    fake.max_jobs = 1
    fake.quota.scope = "instance"
    fake.delay = 0.3
    splunk = backend(fake, max_concurrent=2)

    first, second = await asyncio.gather(splunk.search(query()), splunk.search(query()))

    assert len(first) == len(second) == 5
    assert fake.ledger.totals().refused >= 1 and splunk.counters.retries >= 1
    assert fake.max_concurrent_seen == 1
    assert splunk.counters.errors == {}


async def test_credentials_never_appear_in_errors_or_logs(
    fake: FakeSplunk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    async def failure(splunk: SplunkSearchBackend, text: str = "index=web") -> None:
        with pytest.raises(BotError) as failed:
            await splunk.search(query(text))
        texts.append(str(failed.value))
        texts.append((await splunk.check()).reason)

    with_password = backend(fake, token=None, username="svc-bot", password=PASSWORD)
    fake.fail_next(401, count=2)
    await failure(with_password)
    await failure(backend(fake, token=None, username="svc-bot", password=PASSWORD + "x"))
    await failure(backend(fake, token=TOKEN + "x"))
    fake.fail_next(503, count=3)
    await failure(backend(fake))
    fake.fatal(f"search refused for token {TOKEN}")  # Splunk quoting a credential back
    await failure(backend(fake))
    fake.fatal(f"search refused for password {PASSWORD}")
    await failure(with_password)

    everything = "\n".join(texts) + caplog.text
    assert "Splunk rejected the credentials" in everything
    for secret in (TOKEN, PASSWORD):
        assert secret not in everything


async def test_check_reports_the_version_and_a_trivial_search(fake: FakeSplunk) -> None:
    health = await backend(fake).check()

    assert health.status is HealthStatus.OK
    assert health.reason == "Splunk 9.3.1, search ok"
    assert fake.searches()[-1].params["search"] == "| makeresults count=1"


async def test_check_is_down_when_splunk_cannot_be_reached() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    splunk = SplunkSearchBackend(
        SplunkSettings(host="127.0.0.1", port=port, scheme="http", token=SecretStr(TOKEN))
    )

    health = await splunk.check()

    assert health.status is HealthStatus.DOWN
    assert health.reason == f"cannot reach Splunk at http://127.0.0.1:{port}: connection refused"


async def test_a_port_that_is_not_splunkd_is_named_as_the_likely_mistake() -> None:
    class SplunkWeb(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><html><body>Splunk Web</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with ThreadingHTTPServer(("127.0.0.1", 0), SplunkWeb) as web:
        serving = threading.Thread(target=web.serve_forever, kwargs={"poll_interval": 0.02})
        serving.start()
        try:
            settings = SplunkSettings(
                host="127.0.0.1", port=web.server_address[1], scheme="http", token=SecretStr(TOKEN)
            )
            health = await SplunkSearchBackend(settings).check()
        finally:
            web.shutdown()
            serving.join()

    assert health.status is HealthStatus.DOWN
    assert "is not Splunk's REST API" in health.reason
    assert "check SPLUNK_PORT (the management port, 8089)" in health.reason


def test_search_link_opens_the_query_over_its_window_in_splunk_web(fake: FakeSplunk) -> None:
    splunk = backend(fake, web_url="https://splunk.example.com", app="ops")

    link = splunk.search_link(query('index=web status>=500 "connection refused"'))

    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://splunk.example.com/en-US/app/ops/search"
    )
    assert parse_qs(parts.query) == {
        "q": ['search index=web status>=500 "connection refused"'],
        "earliest": [str(int(EARLIEST.timestamp()))],
        "latest": [str(int(NOW.timestamp()))],
    }
    default = backend(fake).search_link(query())
    assert default.startswith(f"https://{fake.host}:8000/en-US/app/search/search?q=search%20")


# a shipped rule -----------------------------------------------------------------------------------


async def test_the_shipped_web_5xx_burst_rule_fires_on_its_scenario(fake: FakeSplunk) -> None:
    [rule] = [r for r in load_rules([]) if r.id == "web-5xx-burst"]
    fake.add_events(SCENARIOS["web-5xx-burst"].events(NOW, random.Random(7)))

    result = await run_rule(
        rule, backend(fake), Window.sliding(NOW, rule.window, previous_end=None), str
    )

    [alert] = result.alerts
    assert alert.group == (("service", "checkout"),)
    assert alert.value >= 20
    assert fake.searches()[0].params["search"] == f"search {rule.query}"


# TLS --------------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> Tls:
    """A throw-away CA and a certificate it signed for 127.0.0.1."""
    return make_tls(tmp_path)


async def test_tls_is_verified_against_the_ca_file_and_an_unknown_ca_is_refused(
    tls_files: Tls,
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_file, tls_files.key_file)
    with FakeSplunk(token=TOKEN, tls=context) as server:
        server.add_events(web_events())
        trusted = SplunkSearchBackend(settings(server, ca_file=tls_files.ca_file))
        untrusted = SplunkSearchBackend(settings(server))

        hits = await trusted.search(query())
        with pytest.raises(SplunkTlsError) as refused:
            await untrusted.search(query())
        health = await untrusted.check()

    assert server.scheme == "https" and len(hits) == 5
    assert str(refused.value).startswith(
        f"Splunk at https://127.0.0.1:{server.port}: TLS certificate not trusted"
    )
    assert "set SPLUNK_CA_FILE" in str(refused.value)
    assert health.status is HealthStatus.DOWN and "not trusted" in health.reason
    assert len(server.searches()) == 1  # the refused handshake was not retried


async def wait_until(condition: Any, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
