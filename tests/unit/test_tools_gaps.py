"""The rule tools' warning for group_by fields missing from result rows."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.hits import Hit, SearchQuery
from bot.ports import Health, HealthStatus
from detectors.rules import load_rules
from detectors.tools.gaps import FieldGap, GapCounter

T = datetime(2026, 11, 22, 10, tzinfo=UTC)


def test_the_warning_says_what_happens_to_the_groups() -> None:
    assert FieldGap("src", 520, 520).text() == (
        "src missing in 520 of 520 rows: every event falls into one group"
    )
    assert FieldGap("src", 520, 520, ("host",)).text() == (
        "src missing in 520 of 520 rows: events are grouped by host alone"
    )
    assert FieldGap("src", 12, 520, ("host",)).text() == (
        "src missing in 12 of 520 rows: those fall into one group, titled 'src unknown'"
    )


class Rows:
    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits

    async def search(self, query: SearchQuery) -> list[Hit]:
        return self.hits

    async def check(self) -> Health:
        return Health(HealthStatus.OK, "")


async def test_counts_rows_lacking_each_group_field_of_the_rule_that_searched() -> None:
    (rule,) = [r for r in load_rules([]) if r.id == "ssh-password-guessing"]
    hits = [
        Hit(time=T, fields={"host": "web-2", "src": "203.0.113.45"}, raw="a"),
        Hit(time=T, fields={"host": "web-2", "src": ""}, raw="b"),
        Hit(time=T, fields={"host": "web-2"}, raw="c"),
    ]
    counter = GapCounter(Rows(hits), [rule])

    await counter.search(SearchQuery(rule.query, T, T, 100))
    await counter.search(SearchQuery("index=other", T, T, 100))

    assert counter.gaps(rule) == (FieldGap("src", 2, 3, ("host",)),)
    assert counter.search_link(SearchQuery(rule.query, T, T, 100)) == ""
    assert (await counter.check()).status is HealthStatus.OK
