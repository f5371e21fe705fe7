"""Who is on call, through the real REST client against the TLS fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.errors import ConfigError, PermanentError
from integrations.pagerduty import OnCallLookup, PagerDutySettings, on_call_line
from tests.fakes.pagerduty import FakePagerDuty, Tls, make_tls

TOKEN = "fake-rest-api-token-0123456789"


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("pd-tls"))


@pytest.fixture
def fake(tls: Tls) -> Iterator[FakePagerDuty]:
    with FakePagerDuty(tls, api_token=TOKEN) as server:
        server.oncall["PUS0KTE"] = [("Bob Example", 2), ("Ann Example", 1), ("Ann Example", 3)]
        server.services["PF9KMXH"] = "PUS0KTE"
        yield server


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def lookup(fake: FakePagerDuty, ticker: Ticker) -> Iterator[OnCallLookup]:
    settings = PagerDutySettings(
        api_token=TOKEN,  # type: ignore[arg-type]
        api_url=fake.url,
        ca_file=fake.tls.ca_file,
        oncall_cache_seconds=300,
    )
    found = OnCallLookup(settings, monotonic=ticker)
    yield found
    found.close()


def oncall_requests(fake: FakePagerDuty) -> list[str]:
    return [path for _, path in fake.requests if path.startswith("/oncalls")]


async def test_who_is_on_call_by_policy_or_service_lowest_level_first(
    lookup: OnCallLookup, fake: FakePagerDuty
) -> None:
    assert await lookup.who("PUS0KTE") == ["Ann Example (L1)", "Bob Example (L2)"]
    assert await lookup.who(service="PF9KMXH") == ["Ann Example (L1)", "Bob Example (L2)"]
    assert oncall_requests(fake) == [
        "/oncalls?escalation_policy_ids%5B%5D=PUS0KTE&earliest=true&limit=100"
    ]  # the service's policy was the same one: answered from the cache


async def test_answers_are_cached_then_refreshed_and_kept_when_pagerduty_fails(
    lookup: OnCallLookup, fake: FakePagerDuty, ticker: Ticker
) -> None:
    await lookup.who("PUS0KTE")
    fake.oncall["PUS0KTE"] = [("Cem Example", 1)]
    ticker.now += 299
    assert await lookup.who("PUS0KTE") == ["Ann Example (L1)", "Bob Example (L2)"]
    ticker.now += 2
    assert await lookup.who("PUS0KTE") == ["Cem Example (L1)"]
    ticker.now += 301
    fake.fail_next(503, path="/oncalls")
    assert await lookup.who("PUS0KTE") == ["Cem Example (L1)"]  # stale beats nothing
    assert len(oncall_requests(fake)) == 3


async def test_unknown_ids_and_missing_configuration(lookup: OnCallLookup) -> None:
    with pytest.raises(PermanentError, match="HTTP 404"):
        await lookup.who(service="PNOPE00")
    with pytest.raises(PermanentError, match="not a PagerDuty id"):
        await lookup.who("../users")
    assert await lookup.who("PEMPTY0") == []
    with pytest.raises(ConfigError, match="PAGERDUTY_API_TOKEN"):
        OnCallLookup(PagerDutySettings())


def test_the_card_line() -> None:
    assert on_call_line(["Ann (L1)", "Bob (L2)"]) == "On call: Ann (L1), Bob (L2)"
    assert on_call_line([]) == ""
    many = [f"P{n} (L1)" for n in range(8)]
    assert on_call_line(many, limit=3) == "On call: P0 (L1), P1 (L1), P2 (L1) and 5 more"
