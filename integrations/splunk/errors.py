"""Splunk failures translated into the bot's error tree.

::

    PermanentError
     ├── SplunkSearchError     Splunk refused or failed the search (FATAL/ERROR messages, 400)
     ├── SplunkAuthError       credentials rejected (401) even after logging in again
     ├── SplunkRefused         any other 4xx (403 capability, 404 app or owner, …)
     └── SplunkTlsError        certificate not trusted, handshake failed
    TransientError
     ├── SplunkUnavailable     503 and other 5xx, 429, the search concurrency quota
     ├── SplunkUnreachable     connection refused or reset, DNS, a broken stream
     └── SplunkTimeout         no answer within the time allowed

Every error carries ``kind`` (the counter it is tallied under). Texts quote Splunk's own
message but never the request's credentials.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
from collections.abc import Sequence
from xml.etree.ElementTree import ParseError, fromstring

from splunklib.binding import HTTPError

from bot.errors import BotError, PermanentError, TransientError


class SplunkSearchError(PermanentError):
    kind = "search"


class SplunkAuthError(PermanentError):
    kind = "auth"


class SplunkRefused(PermanentError):
    kind = "http"


class SplunkTlsError(PermanentError):
    kind = "tls"


class SplunkUnavailable(TransientError):
    kind = "unavailable"


class SplunkUnreachable(TransientError):
    kind = "connection"


class SplunkTimeout(TransientError):
    kind = "timeout"


_ERROR_LEVELS = frozenset({"FATAL", "ERROR"})
_QUOTA = re.compile(
    r"maximum number of concurrent|concurrency limit|disk usage quota", re.IGNORECASE
)
_DETAIL_LIMIT = 500


def raise_for_messages(messages: Sequence[tuple[str, str]]) -> None:
    """Raise for FATAL and ERROR messages (``(level, text)`` pairs) with Splunk's own text.

    Hitting the search concurrency or disk quota is worth retrying; anything else is not.
    """
    texts = [text for level, text in messages if level.upper() in _ERROR_LEVELS and text]
    if not texts:
        return
    text = "Splunk: " + "; ".join(dict.fromkeys(texts))
    if _QUOTA.search(text):
        raise SplunkUnavailable(text)
    raise SplunkSearchError(text)


def http_detail(body: bytes) -> str:
    """Splunk's message from an error body (XML ``<msg>`` or JSON ``messages``), else the body."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    found: list[str] = []
    if text.startswith("<"):
        try:
            found = [(m.text or "").strip() for m in fromstring(text).iter("msg")]
        except ParseError:
            found = []
    elif text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        messages = data.get("messages") if isinstance(data, dict) else None
        if isinstance(messages, list):
            found = [str(m.get("text", "")).strip() for m in messages if isinstance(m, dict)]
    joined = "; ".join(f for f in found if f) or text
    return joined[:_DETAIL_LIMIT]


def translate_http(exc: HTTPError, where: str) -> BotError:
    """An HTTP error answer (other than 401, which the backend handles) as a bot error."""
    status = int(exc.status)
    detail = http_detail(exc.body if isinstance(exc.body, bytes) else b"")
    said = f": {detail}" if detail else ""
    if status == 400:
        return SplunkSearchError(f"Splunk: {detail or 'the search was refused (400)'}")
    if status == 429 or status >= 500:
        return SplunkUnavailable(
            f"Splunk at {where} answered {status} {exc.reason}{said}",
            retry_after=_retry_after(exc.headers),
        )
    if status == 403:
        return SplunkRefused(
            f"Splunk refused the request (403 Forbidden){said}; the account needs the "
            "'search' capability and read access to SPLUNK_APP"
        )
    if status == 404:
        return SplunkRefused(
            f"Splunk at {where} answered 404 Not Found{said}; check SPLUNK_APP and SPLUNK_OWNER, "
            "and that SPLUNK_PORT is the management port (8089), not Splunk Web's"
        )
    return SplunkRefused(f"Splunk at {where} answered {status} {exc.reason}{said}")


def translate_os(exc: BaseException, where: str) -> BotError:
    """A network or TLS failure talking to Splunk as a bot error."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or "certificate verify failed"
        return SplunkTlsError(
            f"Splunk at {where}: TLS certificate not trusted ({reason}); set SPLUNK_CA_FILE "
            "to the CA that signed splunkd's certificate"
        )
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        return SplunkTlsError(
            f"Splunk at {where}: TLS handshake failed ({reason}); "
            "check SPLUNK_SCHEME and SPLUNK_PORT"
        )
    if isinstance(exc, TimeoutError):
        return SplunkTimeout(f"Splunk at {where} did not answer in time")
    if isinstance(exc, socket.gaierror):
        return SplunkUnreachable(f"cannot resolve Splunk's host for {where}: {exc.strerror}")
    if isinstance(exc, ConnectionRefusedError):
        return SplunkUnreachable(f"cannot reach Splunk at {where}: connection refused")
    if isinstance(exc, http.client.HTTPException | ConnectionError):
        return SplunkUnreachable(
            f"Splunk at {where} closed the connection early ({type(exc).__name__})"
        )
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return SplunkUnreachable(f"cannot reach Splunk at {where}: {reason}")


def unreadable(exc: BaseException, where: str) -> SplunkRefused:
    """An answer splunk-sdk could not parse: usually not splunkd's REST port at all."""
    return SplunkRefused(
        f"Splunk at {where} answered something that is not Splunk's REST API "
        f"({type(exc).__name__}); check SPLUNK_PORT (the management port, 8089) and SPLUNK_SCHEME"
    )


def auth_error(variables: str) -> SplunkAuthError:
    return SplunkAuthError(
        f"Splunk rejected the credentials (401): check {variables} (expired, disabled, or "
        "not allowed to search?)"
    )


def kind_of(exc: BaseException) -> str:
    return str(getattr(exc, "kind", "other"))


def _retry_after(headers: object) -> float | None:
    if not isinstance(headers, list):
        return None
    for key, value in headers:
        if str(key).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
