"""The suppress and resolve dialogs: their views, and reading what people entered (pure).

A dialog opens at once with a placeholder preview (Slack's trigger_id expires after 3 s); the
preview line is filled in with ``views.update`` once the count is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.domain.durations import parse_duration
from bot.domain.incident import MAX_SUPPRESS, human_id
from integrations.slack.blockkit import clip, context, plain
from integrations.slack.payloads import ModalMetadata, ViewState


class ModalId(StrEnum):
    SUPPRESS = "suppress-modal"
    RESOLVE = "resolve-modal"


class Field(StrEnum):
    """Block ids (and action ids) of the dialogs' inputs."""

    DURATION = "duration"
    CUSTOM = "custom"
    REASON = "reason"
    NOTE = "note"
    PREVIEW = "preview"


CUSTOM = "custom"
CHOICES = (("30m", "30 minutes"), ("1h", "1 hour"), ("4h", "4 hours"), ("24h", "24 hours"))
DEFAULT_CHOICE = "1h"
MAX_TITLE = 24
MAX_REASON = 500

View = dict[str, Any]


class Invalid(ValueError):
    """What is wrong with a submission, per block id (Slack shows it under the field)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class SuppressInput:
    duration: timedelta
    reason: str


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label, 75), "value": value}


def _frame(modal: ModalId, title: str, submit: str, metadata: ModalMetadata) -> View:
    return {
        "type": "modal",
        "callback_id": modal.value,
        "private_metadata": metadata.model_dump_json(),
        "title": plain(clip(title, MAX_TITLE), MAX_TITLE),
        "submit": plain(submit, MAX_TITLE),
        "close": plain("Cancel", MAX_TITLE),
    }


def suppress_view(metadata: ModalMetadata, hidden_alerts: int | None = None) -> View:
    """The suppress dialog; ``hidden_alerts`` None shows that the count is on its way."""
    name = human_id(metadata.incident_id)
    choices = [_option(v, label) for v, label in CHOICES] + [_option(CUSTOM, "Custom…")]
    if hidden_alerts is None:
        preview = f"Counting the open alerts that suppressing {name} hides…"
    elif hidden_alerts == 0:
        preview = f":information_source: {name} has no open alerts right now."
    else:
        plural = "s" if hidden_alerts != 1 else ""
        preview = (
            f":see_no_evil: This hides *{hidden_alerts}* open alert{plural} of {name} "
            "until the suppression ends."
        )
    blocks = [
        {
            "type": "input",
            "block_id": Field.DURATION.value,
            "label": plain("For how long", 2000),
            "element": {
                "type": "static_select",
                "action_id": Field.DURATION.value,
                "options": choices,
                "initial_option": choices[[v for v, _ in CHOICES].index(DEFAULT_CHOICE)],
            },
        },
        {
            "type": "input",
            "block_id": Field.CUSTOM.value,
            "optional": True,
            "label": plain("Custom duration", 2000),
            "hint": plain("Used when “Custom…” is chosen: 90m, 2h30m, 3d (at most 30d)", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": Field.CUSTOM.value,
                "placeholder": plain("2h30m", 150),
            },
        },
        {
            "type": "input",
            "block_id": Field.REASON.value,
            "label": plain("Reason", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": Field.REASON.value,
                "multiline": True,
                "max_length": MAX_REASON,
            },
        },
        {**context(preview), "block_id": Field.PREVIEW.value},
    ]
    return {**_frame(ModalId.SUPPRESS, f"Suppress {name}", "Suppress", metadata), "blocks": blocks}


def resolve_view(metadata: ModalMetadata) -> View:
    name = human_id(metadata.incident_id)
    blocks = [
        {
            "type": "input",
            "block_id": Field.NOTE.value,
            "optional": True,
            "label": plain("Note for the timeline", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": Field.NOTE.value,
                "multiline": True,
                "max_length": MAX_REASON,
                "placeholder": plain("What fixed it?", 150),
            },
        },
        context(f"Resolving {name} closes it for everyone; it reopens if the alert fires again."),
    ]
    return {**_frame(ModalId.RESOLVE, f"Resolve {name}", "Resolve", metadata), "blocks": blocks}


def read_metadata(text: str) -> ModalMetadata:
    """The metadata the bot put in a dialog; ValueError when it is not ours."""
    return ModalMetadata.model_validate(json.loads(text or "null"))


def read_suppress(state: ViewState) -> SuppressInput:
    """Duration and reason from a submitted suppress dialog; :class:`Invalid` says what's wrong."""
    errors: dict[str, str] = {}
    choice = state.get(Field.DURATION.value) or DEFAULT_CHOICE
    duration: timedelta | None = None
    if choice == CUSTOM:
        text = state.get(Field.CUSTOM.value)
        if not text:
            errors[Field.CUSTOM.value] = "Enter a duration such as 90m or 2h30m, or pick one above"
        else:
            try:
                duration = parse_duration(text)
            except ValueError:
                shown = clip(text, 40)
                errors[Field.CUSTOM.value] = f"“{shown}” is not a duration: use 90m, 2h, 3d"
            else:
                if duration <= timedelta(0) or duration > MAX_SUPPRESS:
                    errors[Field.CUSTOM.value] = "Choose a duration above 0 and at most 30d"
                    duration = None
    elif choice in dict(CHOICES):
        duration = parse_duration(choice)
    else:
        errors[Field.DURATION.value] = "Pick one of the listed durations"
    reason = state.get(Field.REASON.value)
    if not reason:
        errors[Field.REASON.value] = "Say why: the reason goes into the timeline and the audit"
    if errors or duration is None:
        raise Invalid(errors)
    return SuppressInput(duration, reason)


def read_note(state: ViewState) -> str:
    return state.get(Field.NOTE.value)
