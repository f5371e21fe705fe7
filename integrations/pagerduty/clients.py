"""The python-pagerduty clients as the bot uses them, and the translation of their errors.

The SDK's own retry loops sleep in the calling thread (and retry a 429 without limit), which
would outlive the deadline the bot puts on every call. Here they are turned off: a response hook
turns 429 and 5xx answers into :class:`TransientError` at once, network errors are not retried,
and the outbox retries with backoff and jitter instead (honouring ``Retry-After``). Error text
names the call and PagerDuty's own message, never a routing key or token.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pagerduty
from httpx2 import Response

from bot.errors import BotError, PermanentError, TransientError
from integrations.pagerduty.settings import ENV_PREFIX, PagerDutySettings
from integrations.retry_after import retry_after_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_MESSAGE = 500


class _Retryable(Exception):
    """A 429 or 5xx answer, raised from the response hook before the SDK can loop on it."""

    def __init__(self, status: int, retry_after: float | None, message: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.message = message


def _refuse_retries(response: Response) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        response.read()
        raise _Retryable(
            response.status_code,
            retry_after_seconds(response.headers.get("retry-after")),
            answer_message(response),
        )


def _quiet(client: pagerduty.ApiClient, settings: PagerDutySettings) -> None:
    client.retry.clear()
    client.max_network_attempts = 0
    client.timeout = settings.timeout  # type: ignore[assignment]  # the SDK annotates int


def events_client(
    settings: PagerDutySettings, routing_key: str, verify: ssl.SSLContext | bool
) -> pagerduty.EventsApiV2Client:
    client = pagerduty.EventsApiV2Client(
        routing_key,
        base_url=settings.events_url,
        verify=verify,
        event_hooks={"response": [_refuse_retries]},
    )
    _quiet(client, settings)
    return client


def rest_client(
    settings: PagerDutySettings, verify: ssl.SSLContext | bool
) -> pagerduty.RestApiV2Client:
    assert settings.api_token is not None
    client = pagerduty.RestApiV2Client(
        settings.api_token.get_secret_value(),
        default_from=settings.from_email or None,
        base_url=settings.api_url,
        verify=verify,
        event_hooks={"response": [_refuse_retries]},
    )
    _quiet(client, settings)
    return client


def answer_message(response: Response) -> str:
    """PagerDuty's explanation in an answer: Events v2 ``message`` + ``errors``, or REST
    ``error.message`` + ``error.errors``; else the start of the body."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    inner: dict[str, Any] = error if isinstance(error, dict) else body
    message = str(inner.get("message") or body.get("status") or "").strip()
    errors = inner.get("errors")
    details = [str(e) for e in errors] if isinstance(errors, list) else []
    return "; ".join(part for part in [message, *details] if part)


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:MAX_MESSAGE]


def translate(exc: BaseException, what: str, secrets: Sequence[str]) -> BotError:
    """The bot's error for a failed call: 429, 5xx, timeouts and network -> TransientError;
    other 4xx -> PermanentError with PagerDuty's message."""
    if isinstance(exc, _Retryable):
        reason = "rate limited" if exc.status == 429 else "server error"
        detail = f": {exc.message}" if exc.message else ""
        return TransientError(
            scrub(f"PagerDuty {what}: {reason} (HTTP {exc.status}){detail}", secrets),
            exc.retry_after,
        )
    if isinstance(exc, pagerduty.HttpError) and exc.response is not None:
        status = exc.response.status_code
        message = answer_message(exc.response)
        detail = f": {message}" if message else ""
        if status in (401, 403):
            detail += f" (check {ENV_PREFIX}API_TOKEN and {ENV_PREFIX}API_URL)"
        if 200 <= status < 300 or status == 408:
            return TransientError(scrub(f"PagerDuty {what}: unexpected answer{detail}", secrets))
        return PermanentError(scrub(f"PagerDuty refused {what} (HTTP {status}){detail}", secrets))
    if isinstance(exc, pagerduty.Error):
        cause = exc.__cause__ or exc.__context__
        if _tls_refused(cause):
            return TransientError(
                f"PagerDuty {what}: TLS certificate not trusted; set {ENV_PREFIX}CA_FILE "
                "when a proxy or private CA signs it"
            )
        name = type(cause).__name__ if cause is not None else "error"
        return TransientError(f"PagerDuty {what}: cannot reach PagerDuty ({name})")
    return TransientError(f"PagerDuty {what}: {type(exc).__name__}")


def _tls_refused(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


async def call(
    fn: Callable[..., T],
    *args: Any,
    what: str,
    deadline: float,
    secrets: Sequence[str],
    **kwargs: Any,
) -> T:
    """Run a blocking SDK call in a worker thread, waiting at most ``deadline`` seconds;
    translate its errors."""
    try:
        async with asyncio.timeout(deadline):
            return await asyncio.to_thread(fn, *args, **kwargs)
    except TimeoutError:
        raise TransientError(f"PagerDuty {what}: no answer within {deadline:g}s") from None
    except (_Retryable, pagerduty.Error) as exc:
        raise translate(exc, what, secrets) from None
