"""Slack Web API failures translated into the bot's error tree.

::

    TransientError
     ├── SlackRateLimited   HTTP 429 / ``ratelimited``: retry after Slack's Retry-After
     └── SlackUnavailable   5xx, Slack's internal errors, timeouts, connection failures
    PermanentError
     └── SlackRefused       Slack answered ``ok: false`` with an error code (the code is quoted)

Texts quote Slack's error code and a hint; they never contain a token (``scrub`` removes any
configured secret from whatever text is built, as a second line of defence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import BotError, PermanentError, TransientError


class SlackRateLimited(TransientError):
    kind = "ratelimited"


class SlackUnavailable(TransientError):
    kind = "unavailable"


class SlackRefused(PermanentError):
    kind = "refused"


TRANSIENT_CODES = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
HINTS = {
    "channel_not_found": "no such channel, or the bot cannot see it; use the channel's ID",
    "not_in_channel": "invite the bot to the channel first (/invite @<bot name>)",
    "is_archived": "the channel is archived",
    "invalid_auth": "Slack does not accept SLACK_BOT_TOKEN",
    "not_authed": "no token was sent; set SLACK_BOT_TOKEN",
    "token_revoked": "SLACK_BOT_TOKEN was revoked; reinstall the app and copy the new token",
    "account_inactive": "the bot's token belongs to a deactivated app or user",
    "invalid_blocks": "the message broke a Block Kit rule",
    "msg_too_long": "the message is too long for Slack",
    "message_not_found": "the card's message no longer exists",
    "cant_update_message": "the message was not posted by this bot",
    "missing_scope": "the app lacks a permission; add the scope and reinstall",
}
DEFAULT_RETRY_AFTER = 1.0
_DETAIL = 300


def translate(exc: BaseException, method: str, secrets: Sequence[str] = ()) -> BotError:
    """An exception raised by slack-sdk while calling ``method`` as a bot error."""
    kind, text, retry_after = _classify(exc, method)
    text = scrub(text, secrets)
    if kind is SlackRateLimited:
        return SlackRateLimited(text, retry_after=retry_after)
    if kind is SlackUnavailable:
        return SlackUnavailable(text, retry_after=retry_after)
    return SlackRefused(text)


ErrorKind = type[SlackRateLimited] | type[SlackUnavailable] | type[SlackRefused]
Classified = tuple[ErrorKind, str, float | None]


def _classify(exc: BaseException, method: str) -> Classified:
    if isinstance(exc, SlackApiError):
        return _from_response(exc, method)
    if isinstance(exc, TimeoutError):
        return SlackUnavailable, f"Slack did not answer {method} in time", None
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return SlackUnavailable, f"cannot reach Slack for {method}: {type(exc).__name__}", None
    if isinstance(exc, aiohttp.ClientError):
        return SlackUnavailable, f"Slack {method} failed in transit: {type(exc).__name__}", None
    if isinstance(exc, SlackClientError):
        return SlackRefused, f"Slack {method} could not be sent: {exc}", None
    return SlackUnavailable, f"Slack {method} failed: {type(exc).__name__}", None


def _from_response(exc: SlackApiError, method: str) -> Classified:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data: Any = getattr(response, "data", None)
    body = data if isinstance(data, Mapping) else {}
    code = str(body.get("error") or "")
    if status == 429 or code == "ratelimited":
        wait = retry_after_of(getattr(response, "headers", None))
        return SlackRateLimited, f"Slack rate-limited {method}; retry in {wait:g}s", wait
    if status >= 500 or code in TRANSIENT_CODES:
        said = f" ({code})" if code else ""
        return SlackUnavailable, f"Slack answered {method} with HTTP {status}{said}", None
    if not code:
        return SlackRefused, f"Slack answered {method} with HTTP {status} and no error code", None
    hint = HINTS.get(code, "")
    if code == "missing_scope" and body.get("needed"):
        hint = f"{hint} (needs {body['needed']})"
    text = f"Slack refused {method}: {code}" + (f" ({hint})" if hint else "") + _detail(body)
    return SlackRefused, text, None


def _detail(body: Mapping[str, Any]) -> str:
    metadata = body.get("response_metadata")
    messages = metadata.get("messages") if isinstance(metadata, Mapping) else None
    if not isinstance(messages, list) or not messages:
        return ""
    return ": " + "; ".join(str(m) for m in messages)[:_DETAIL]


def retry_after_of(headers: Any) -> float:
    """Seconds from a Retry-After header (Slack sends whole seconds); 1 s when absent."""
    if headers is None:
        return DEFAULT_RETRY_AFTER
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return text
