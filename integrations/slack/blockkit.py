"""Block Kit building blocks within Slack's limits: text is clipped visibly, never refused.

Slack answers ``invalid_blocks`` (or ``msg_too_long``) when a message breaks a limit, and a card
that cannot be posted is worse than a shortened one. Every text that goes into a block passes
through one of these functions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_URL = 3000
MAX_FALLBACK = 3000
MORE = "…more in the console"
ELLIPSIS = "…"

_MENTION = re.compile(r"\bslack:([UW][A-Z0-9]{2,})\b")

Block = dict[str, Any]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut shown by an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mentions(text: str) -> str:
    """``slack:U123`` identities shown as Slack mentions (``<@U123>``); run after escape()."""
    return _MENTION.sub(r"<@\1>", text)


def safe_url(url: str) -> str:
    """A URL that cannot break out of ``<url|label>`` link syntax."""
    return url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")[:MAX_URL]


def link(url: str, label: str) -> str:
    return f"<{safe_url(url)}|{escape(label).replace('|', '¦')}>"


def date(at: datetime) -> str:
    """A date each reader sees in their own time zone; the fallback is UTC."""
    fallback = f"{at:%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER)}


def section(text: str, more_url: str = "") -> Block:
    """A mrkdwn section; past the limit it ends with a link to the whole in the console."""
    if len(text) > MAX_SECTION:
        tail = f"\n{link(more_url, MORE)}" if more_url else ""
        text = clip(text, MAX_SECTION - len(tail)) + tail
    return {"type": "section", "text": mrkdwn(text)}


def fields(pairs: list[tuple[str, str]]) -> Block:
    """A two-column section of ``*label*\\nvalue`` fields (at most ten)."""
    return {
        "type": "section",
        "fields": [mrkdwn(clip(f"*{label}*\n{value}", MAX_FIELD)) for label, value in pairs[:10]],
    }


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(clip(text, MAX_SECTION))]}


def button(
    action_id: str, label: str, value: str = "", style: str = "", url: str = ""
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(label, MAX_BUTTON),
    }
    if value:
        element["value"] = value
    if style in ("primary", "danger"):
        element["style"] = style
    if url:
        element["url"] = safe_url(url)
    return element


def fit(blocks: list[Block], more_url: str) -> list[Block]:
    """At most ``MAX_BLOCKS`` blocks; the last one then points to the console."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 1], context(link(more_url, MORE))]
