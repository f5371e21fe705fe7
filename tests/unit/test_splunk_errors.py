"""Splunk's HTTP answers and network failures, as the errors a rule records."""

from __future__ import annotations

import io
import ssl

import pytest
from splunklib.binding import HTTPError
from splunklib.data import record

from bot.errors import PermanentError, TransientError
from integrations.splunk.errors import http_detail, translate_http, translate_os

WHERE = "https://splunk.example.com:8089"
XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <messages>\n'
    b'    <msg type="ERROR">You do not have permission to run searches.</msg>\n'
    b"  </messages>\n</response>\n"
)


def answer(status: int, reason: str, body: bytes, headers: list[tuple[str, str]] | None = None):
    response = record(
        {"status": status, "reason": reason, "headers": headers or [], "body": io.BytesIO(body)}
    )
    return HTTPError(response)


def test_detail_comes_from_xml_json_or_the_body() -> None:
    assert http_detail(XML) == "You do not have permission to run searches."
    assert http_detail(b'{"messages":[{"type":"FATAL","text":"Bad query"}]}') == "Bad query"
    assert http_detail(b"plain words") == "plain words"
    assert http_detail(b"") == ""


@pytest.mark.parametrize(
    ("status", "reason", "kind", "expected"),
    [
        (400, "Bad Request", PermanentError, "Splunk: You do not have permission"),
        (403, "Forbidden", PermanentError, "Splunk refused the request (403 Forbidden): You"),
        (404, "Not Found", PermanentError, f"Splunk at {WHERE} answered 404 Not Found: You"),
        (503, "Service Unavailable", TransientError, f"Splunk at {WHERE} answered 503"),
        (429, "Too Many Requests", TransientError, f"Splunk at {WHERE} answered 429"),
    ],
)
def test_http_answers(status: int, reason: str, kind: type, expected: str) -> None:
    error = translate_http(answer(status, reason, XML), WHERE)

    assert isinstance(error, kind)
    assert str(error).startswith(expected)


def test_retry_after_is_kept() -> None:
    error = translate_http(answer(503, "Busy", b"", [("Retry-After", "7")]), WHERE)

    assert isinstance(error, TransientError) and error.retry_after == 7


@pytest.mark.parametrize(
    ("failure", "kind", "expected"),
    [
        (ConnectionRefusedError(), TransientError, f"cannot reach Splunk at {WHERE}: connection"),
        (TimeoutError("timed out"), TransientError, f"Splunk at {WHERE} did not answer in time"),
        (ConnectionResetError(), TransientError, f"Splunk at {WHERE} closed the connection"),
        (ssl.SSLError(1, "WRONG_VERSION_NUMBER"), PermanentError, "Splunk at https"),
    ],
)
def test_network_failures(failure: OSError, kind: type, expected: str) -> None:
    error = translate_os(failure, WHERE)

    assert isinstance(error, kind)
    assert str(error).startswith(expected)
