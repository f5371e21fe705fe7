"""The suppress and resolve dialogs, what people enter in them, and the payloads they come in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integrations.slack.buttons import press_key
from integrations.slack.modals import (
    Invalid,
    read_metadata,
    read_note,
    read_suppress,
    resolve_view,
    suppress_view,
)
from integrations.slack.payloads import ButtonValue, ModalMetadata, ViewState
from tests.fakes.slack import view_problems

METADATA = ModalMetadata(
    kind="suppress", incident_id=12, channel="C0INCIDENT", message_ts="1.2", key="slack:k"
)


def state(duration: str | None = "1h", custom: str | None = None, reason: str = "") -> ViewState:
    values: dict[str, dict[str, object]] = {
        "custom": {"custom": {"type": "plain_text_input", "value": custom}},
        "reason": {"reason": {"type": "plain_text_input", "value": reason or None}},
    }
    if duration is not None:
        option = {"text": {"type": "plain_text", "text": duration}, "value": duration}
        values["duration"] = {"duration": {"type": "static_select", "selected_option": option}}
    return ViewState.model_validate({"values": values})


@pytest.mark.parametrize(
    ("duration", "custom", "expected"),
    [
        ("30m", None, timedelta(minutes=30)),
        ("4h", "ignored", timedelta(hours=4)),
        ("24h", None, timedelta(days=1)),
        ("custom", "2h30m", timedelta(hours=2, minutes=30)),
        ("custom", " 3d ", timedelta(days=3)),
    ],
)
def test_suppress_reads_the_chosen_duration(
    duration: str, custom: str | None, expected: timedelta
) -> None:
    entered = read_suppress(state(duration, custom, reason="deploy"))
    assert entered.duration == expected and entered.reason == "deploy"


@pytest.mark.parametrize(
    ("duration", "custom", "reason", "errors"),
    [
        ("custom", None, "x", {"custom": "Enter a duration such as 90m or 2h30m"}),
        ("custom", "soon", "x", {"custom": "“soon” is not a duration"}),
        ("custom", "31d", "x", {"custom": "at most 30d"}),
        ("forever", None, "x", {"duration": "Pick one of the listed durations"}),
        ("1h", None, "", {"reason": "Say why"}),
        ("custom", "0s", "", {"custom": "above 0", "reason": "Say why"}),
    ],
)
def test_bad_input_is_shown_under_its_field(
    duration: str, custom: str | None, reason: str, errors: dict[str, str]
) -> None:
    with pytest.raises(Invalid) as caught:
        read_suppress(state(duration, custom, reason))
    assert set(caught.value.errors) == set(errors)
    for field, says in errors.items():
        assert says in caught.value.errors[field]


def test_dialogs_are_views_slack_accepts() -> None:
    for view in (suppress_view(METADATA), suppress_view(METADATA, 7), resolve_view(METADATA)):
        assert view_problems(view) == []
    assert read_metadata(suppress_view(METADATA)["private_metadata"]) == METADATA


def test_the_preview_line_counts_hidden_alerts() -> None:
    def preview(view: dict[str, object]) -> str:
        blocks = view["blocks"]
        assert isinstance(blocks, list)
        return str(blocks[-1]["elements"][0]["text"])

    assert "Counting" in preview(suppress_view(METADATA))
    assert "hides *7* open alerts of INC-12" in preview(suppress_view(METADATA, 7))
    assert "no open alerts" in preview(suppress_view(METADATA, 0))


def test_resolve_note_is_optional() -> None:
    empty = ViewState.model_validate({"values": {"note": {"note": {"type": "plain_text_input"}}}})
    assert read_note(empty) == ""


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        '{"kind": "suppress", "incident_id": 12, "key": "k", "extra": 1}',
        '{"kind": "delete", "incident_id": 12, "key": "k"}',
        '{"kind": "suppress", "incident_id": "12", "key": "k"}',
    ],
)
def test_metadata_the_bot_did_not_make_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        read_metadata(text)


@pytest.mark.parametrize("text", ["", "12", "12:", ":abc", "x:1a", "12:XYZ", "0:ab", "12:ab:cd"])
def test_button_values_the_bot_did_not_make_are_refused(text: str) -> None:
    assert ButtonValue.parse(text) is None


def test_press_keys_name_one_press() -> None:
    key = press_key("acknowledge", "U1", "1790000001.000002", "12:ab12cd34")
    assert key == "slack:acknowledge:U1:1790000001.000002:12:ab12cd34"
    assert press_key("acknowledge", "U2", "1790000001.000002", "12:ab12cd34") != key
    long = press_key("acknowledge", "U1" * 100, "1.2", "12:ab")
    assert len(long) < 100 and long.startswith("slack:acknowledge:")
