"""Reading Splunk's JSON results and turning rows into hits."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import PermanentError, TransientError
from integrations.splunk.results import SplunkMessage, parse_time, read_results, to_hit
from integrations.splunk.transport import Abort, Aborted

END = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class CountingStream(io.RawIOBase):
    """A response body that counts how much of it was read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._data.readinto(buffer)
        self.read_bytes += n
        return n


def stream(*lines: object) -> CountingStream:
    return CountingStream(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def row(n: int) -> dict[str, object]:
    return {"preview": False, "offset": n, "result": {"n": str(n), "_raw": f"event {n}"}}


def test_preview_rows_are_dropped_and_final_rows_kept() -> None:
    body = stream(
        {"preview": True, "offset": 0, "result": {"host": "a", "count": "1"}},
        {"preview": False, "offset": 0, "result": {"host": "a", "count": "3"}},
        {"preview": False, "offset": 1, "lastrow": True, "result": {"host": "b", "count": "2"}},
    )

    result = read_results(body, cap=100)

    assert result.rows == [{"host": "a", "count": "3"}, {"host": "b", "count": "2"}]
    assert result.capped is False


def test_job_results_come_as_one_line() -> None:
    body = stream({"preview": False, "init_offset": 0, "results": [{"n": "1"}, {"n": "2"}]})

    assert read_results(body, cap=100).rows == [{"n": "1"}, {"n": "2"}]
    assert read_results(stream({"results": [{"n": "1"}, {"n": "2"}]}), cap=1).capped


def test_reading_stops_at_the_cap() -> None:
    body = stream(*(row(n) for n in range(50_000)))

    result = read_results(body, cap=10)

    assert [r["n"] for r in result.rows] == [str(n) for n in range(10)]
    assert result.capped is True
    assert body.read_bytes <= 1 << 16  # one buffer, not the 3 MB behind it


def test_every_error_message_of_a_line_is_reported_with_splunks_text() -> None:
    body = stream(
        row(0),
        {
            "messages": [
                {"type": "INFO", "text": "Your timerange was substituted"},
                {"type": "FATAL", "text": "Unknown search command 'foo'."},
                {"type": "ERROR", "text": "Error in 'stats' command."},
            ]
        },
    )

    with pytest.raises(PermanentError) as failed:
        read_results(body, cap=100)

    assert str(failed.value) == "Splunk: Unknown search command 'foo'.; Error in 'stats' command."


def test_warnings_are_kept_not_raised() -> None:
    body = stream({"messages": [{"type": "WARN", "text": "Field 'x' does not exist"}]}, row(0))

    result = read_results(body, cap=100)

    assert result.messages == [SplunkMessage("WARN", "Field 'x' does not exist")]
    assert len(result.rows) == 1


def test_the_concurrency_quota_is_worth_retrying() -> None:
    text = (
        "The maximum number of concurrent historical searches for this user based on their "
        "role quota has been reached."
    )
    with pytest.raises(TransientError, match=r"^Splunk: The maximum number of concurrent"):
        read_results(stream({"messages": [{"type": "FATAL", "text": text}]}), cap=10)


def test_a_stream_cut_mid_line_is_transient() -> None:
    body = CountingStream(json.dumps(row(0)).encode() + b'\n{"preview":false,"resu')

    with pytest.raises(TransientError, match="broke off"):
        read_results(body, cap=10)


def test_an_aborted_read_is_not_taken_for_a_complete_one() -> None:
    abort = Abort()
    abort()

    with pytest.raises(Aborted):
        read_results(stream(row(0)), cap=10, abort=abort)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00.000+00:00", END),
        ("2024-05-01T14:00:00.250+02:00", END + timedelta(milliseconds=250)),
        ("2024-05-01T12:00:00", END),
        ("1714564800", END),
        ("1714564800.5", END + timedelta(milliseconds=500)),
        ("yesterday", None),
    ],
)
def test_parse_time(text: str, expected: datetime | None) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


def test_an_event_row_becomes_a_hit() -> None:
    hit = to_hit(
        {
            "_time": "2024-05-01T13:59:58.000+02:00",
            "_raw": "status=502 uri=/api/cart",
            "host": "web-1",
            "_si": ["idx-1", "web"],
            "status": "502",
        },
        END,
    )

    assert hit.time == END - timedelta(seconds=2)
    assert hit.raw == "status=502 uri=/api/cart"
    assert hit.fields["_si"] == "idx-1,web"
    assert hit.fields["host"] == "web-1"


def test_an_aggregated_row_becomes_a_hit_at_the_window_end() -> None:
    hit = to_hit({"host": "web 1", "count": "12", "values(status)": ["502", "503"]}, END)

    assert hit.time == END
    assert hit.fields == {"host": "web 1", "count": "12", "values(status)": "502,503"}
    assert hit.raw == 'count=12 host="web 1" values(status)=502,503'
