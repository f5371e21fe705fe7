"""What goes to Splunk for a query: its text, its time range, and its Splunk Web link."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.hits import SearchQuery
from integrations.splunk.links import epoch, search_link, search_text, time_range


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("index=web status>=500", "search index=web status>=500"),
        ("  error OR timeout ", "search error OR timeout"),
        ("search index=web", "search index=web"),
        ("SEARCH index=web", "SEARCH index=web"),
        ("| tstats count where index=web by host", "| tstats count where index=web by host"),
        ("|makeresults", "|makeresults"),
        ("tstats count where index=web", "| tstats count where index=web"),
        ("inputlookup hosts.csv", "| inputlookup hosts.csv"),
        ("from=alice action=login", "search from=alice action=login"),
        ("searching", "search searching"),
    ],
)
def test_search_text(written: str, sent: str) -> None:
    assert search_text(written) == sent


def test_time_range_is_epoch_seconds() -> None:
    query = SearchQuery(
        "x",
        datetime(2024, 5, 1, 11, 55, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC),
    )

    assert time_range(query) == {"earliest_time": "1714564500", "latest_time": "1714564800.25"}
    assert epoch(datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC)) == "1714564800.000001"


def test_search_link_quotes_the_query_and_app() -> None:
    query = SearchQuery(
        'index=web "a b" | stats count by host',
        datetime(2024, 5, 1, 11, 55, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )

    link = search_link("https://splunk.example.com:8000/", "ops & sec", query)

    assert link == (
        "https://splunk.example.com:8000/en-US/app/ops%20%26%20sec/search"
        "?q=search%20index%3Dweb%20%22a%20b%22%20%7C%20stats%20count%20by%20host"
        "&earliest=1714564500&latest=1714564800"
    )
