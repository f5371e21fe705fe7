from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.hits import Hit, SearchQuery
from bot.errors import TransientError
from bot.ports import Health, HealthStatus
from detectors.runner import run_rule
from detectors.types.threshold import ThresholdRule
from detectors.window import Window

END = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
WINDOW = Window(start=END - timedelta(minutes=5), end=END, new_since=END - timedelta(seconds=30))
RULE = ThresholdRule(
    id="failed-logons",
    title="Failed logons from {IpAddress}",
    query="index=wineventlog EventCode=4625",
    severity="high",
    category="security",
    group_by=("IpAddress",),
    threshold={"op": ">=", "value": 2},
    max_results=500,
)


class RecordingBackend:
    def __init__(self, hits: list[Hit], error: Exception | None = None) -> None:
        self.hits = hits
        self.error = error
        self.queries: list[SearchQuery] = []

    async def search(self, query: SearchQuery) -> list[Hit]:
        self.queries.append(query)
        if self.error is not None:
            raise self.error
        return self.hits

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


def logon(seconds_before_end: int, password: str) -> Hit:
    return Hit(
        time=END - timedelta(seconds=seconds_before_end),
        fields={"IpAddress": "203.0.113.9", "EventCode": "4625"},
        raw=f"EventCode=4625 IpAddress=203.0.113.9 password={password}",
    )


async def test_searches_the_window_and_redacts_every_evidence_line() -> None:
    backend = RecordingBackend([logon(10, "hunter2"), logon(20, "letmein"), logon(90, "qwerty")])

    result = await run_rule(RULE, backend, WINDOW, lambda text: text.split(" password=")[0])

    assert backend.queries == [
        SearchQuery(
            text="index=wineventlog EventCode=4625",
            earliest=WINDOW.start,
            latest=WINDOW.end,
            max_results=500,
        )
    ]
    assert result.hits == 3
    assert result.duration_s >= 0
    (alert,) = result.alerts
    assert alert.title == "Failed logons from 203.0.113.9"
    assert alert.new_events == 2
    assert [e.text for e in alert.evidence] == ["EventCode=4625 IpAddress=203.0.113.9"] * 3
    assert alert.evidence[0].id == backend.hits[0].id


async def test_no_hits_no_alerts() -> None:
    result = await run_rule(RULE, RecordingBackend([]), WINDOW, str)

    assert result.alerts == []
    assert result.hits == 0


async def test_backend_errors_propagate() -> None:
    backend = RecordingBackend([], TransientError("search head busy", retry_after=5))

    with pytest.raises(TransientError, match="search head busy"):
        await run_rule(RULE, backend, WINDOW, str)
