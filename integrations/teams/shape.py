"""What every activity from the Bot Connector carries, checked before the SDK sees it.

The SDK validates field types, but an activity without ``channelId``, ``conversation.id`` or
``from.id`` passes its model and then fails inside the turn (conversation state, our
handlers), after the HTTP answer is decided. Such a body is answered 400 here instead.
"""

from __future__ import annotations

from typing import Any

#: (field, sub-field or "") that the SDK's turn handling and our handlers read
REQUIRED = (
    ("type", ""),
    ("channelId", ""),
    ("serviceUrl", ""),
    ("conversation", "id"),
    ("from", "id"),
    ("recipient", "id"),
)


def missing(payload: Any) -> str | None:
    """None when ``payload`` has what every activity has, else what it lacks."""
    if not isinstance(payload, dict):
        return "the body is not a JSON object"
    for field, inner in REQUIRED:
        value = payload.get(field)
        if inner:
            value = value.get(inner) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value.strip():
            name = f"{field}.{inner}" if inner else field
            return f"not a Bot Framework activity: {name} is missing or not text"
    return None


def unhandled(payload: Any) -> str:
    """Why an invoke found no handler, naming its name and verb."""
    name = payload.get("name") if isinstance(payload, dict) else None
    value = payload.get("value") if isinstance(payload, dict) else None
    action = value.get("action") if isinstance(value, dict) else None
    verb = action.get("verb") if isinstance(action, dict) else None
    if name == "adaptiveCard/action" and not isinstance(verb, str):
        return "an Action.Execute invoke needs value.action.verb"
    if name == "adaptiveCard/action":
        return f"the bot has no card action {str(verb)[:80]!r}"
    return f"the bot does not handle invoke {str(name)[:80]!r}"
