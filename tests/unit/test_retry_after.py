from datetime import UTC, datetime

import pytest

from integrations.retry_after import retry_after_seconds

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12", 12.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("Sun, 22 Nov 2026 10:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 09:59:00 GMT", 0.0),  # already past: go now
        ("soon", None),
        ("-1", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds
