"""Whether bolt can dispatch a signed body at all.

Bolt reads payloads by indexing (``body["actions"][0]``, ``body["user"]["id"]``): a correctly
signed payload of the right ``type`` whose fields have the wrong shape (``"actions": null``)
fails inside bolt's matching with a TypeError and a 500. The same readers run here first, so
such a body is answered 400 instead.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context import BoltContext
from slack_bolt.request import payload_utils as read
from slack_bolt.request.internals import build_context, parse_body

READERS = (
    read.to_options,
    read.to_shortcut,
    read.to_action,
    read.to_view,
    read.to_command,
    read.to_event,
    read.to_message,
    read.to_step,
    read.is_action,
    read.is_view,
    read.is_options,
    read.is_shortcut,
    read.is_event,
    read.is_slash_command,
)


def dispatchable(body: bytes, content_type: str | None) -> str | None:
    """None when bolt can read ``body``, else what is wrong with it."""
    try:
        parsed: Any = parse_body(body.decode("utf-8"), content_type)
    except (UnicodeDecodeError, ValueError):
        return "the body is not a Slack payload"
    if not isinstance(parsed, dict):
        return "the payload is not a JSON object"
    try:
        for reader in READERS:
            reader(parsed)
        build_context(BoltContext(), parsed)
        # what bolt's listener matchers read: (part, required text key, optional text keys)
        block = parsed.get("type") in ("block_actions", "block_suggestion")
        parts = {
            "action": (read.to_action(parsed), "action_id" if block else "callback_id"),
            "view": (read.to_view(parsed), "callback_id"),
            "shortcut": (read.to_shortcut(parsed), "callback_id"),
            "options": (read.to_options(parsed), "action_id" if block else "callback_id"),
            "command": (read.to_command(parsed), "command"),
            "event": (read.to_event(parsed), "type"),
        }
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        return f"the payload has a field of the wrong shape ({type(exc).__name__})"
    if parsed.get("type") == "block_actions" and parts["action"][0] is None:
        return "the payload's actions are missing"
    for name, (part, required) in parts.items():
        if part is None:
            continue
        if not isinstance(part, dict):
            return f"the payload's {name} is not an object"
        if not isinstance(part.get(required), str):
            return f"the payload's {name} has no text {required}"
        for key in ("block_id", "subtype", "callback_id"):
            if part.get(key) is not None and not isinstance(part[key], str):
                return f"the payload's {name} {key} is not text"
    return None
