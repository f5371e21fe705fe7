"""The parts of Slack's request payloads the bot reads, as validated models.

Two kinds of trust boundary, two policies:

* Slack's envelopes (``block_actions``, ``view_submission``, slash commands, events) are signed
  by Slack and grow new fields without notice, so the models read the fields the bot needs and
  ignore the rest (``extra="ignore"``); a field the bot needs that is missing or of the wrong
  type is still refused.
* What the bot itself put into Slack and gets back (a button's value, a modal's
  ``private_metadata``) has an exact shape: ``extra="forbid"`` and strict parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SlackUser(_Envelope):
    id: str = Field(min_length=1)


class Container(_Envelope):
    type: str = ""
    message_ts: str = ""
    channel_id: str = ""
    is_ephemeral: bool = False


class ChannelRef(_Envelope):
    id: str = ""


class PressedAction(_Envelope):
    action_id: str
    value: str = ""
    action_ts: str = ""


class BlockActions(_Envelope):
    type: Literal["block_actions"]
    user: SlackUser
    trigger_id: str = ""
    response_url: str = ""
    container: Container = Container()
    channel: ChannelRef | None = None
    actions: list[PressedAction] = Field(min_length=1)

    @property
    def channel_id(self) -> str:
        return self.container.channel_id or (self.channel.id if self.channel else "")


class Option(_Envelope):
    value: str


class InputValue(_Envelope):
    type: str
    value: str | None = None
    selected_option: Option | None = None

    @property
    def text(self) -> str:
        if self.selected_option is not None:
            return self.selected_option.value
        return (self.value or "").strip()


class ViewState(_Envelope):
    values: dict[str, dict[str, InputValue]] = {}

    def get(self, block_id: str) -> str:
        """The entered or selected value of the (single) input in ``block_id``; "" if none."""
        inputs = self.values.get(block_id, {})
        return next(iter(inputs.values())).text if inputs else ""


class View(_Envelope):
    id: str
    callback_id: str = ""
    private_metadata: str = ""
    state: ViewState = ViewState()


class ViewSubmission(_Envelope):
    type: Literal["view_submission"]
    user: SlackUser
    view: View


class SlashCommand(_Envelope):
    command: str
    text: str = ""
    user_id: str = Field(min_length=1)
    channel_id: str = ""
    response_url: str = ""
    trigger_id: str = ""


class MentionEvent(_Envelope):
    type: Literal["app_mention"]
    user: str = Field(min_length=1)
    text: str = ""
    channel: str
    ts: str
    thread_ts: str = ""


class EventCallback(_Envelope):
    type: Literal["event_callback"]
    event_id: str
    event: MentionEvent


# what the bot minted itself -------------------------------------------------------------------


class ModalMetadata(BaseModel):
    """Where a modal came from, so its submission acts on the card that was pressed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    kind: Literal["suppress", "resolve"]
    incident_id: int = Field(ge=1)
    channel: str = ""
    message_ts: str = ""
    key: str = Field(min_length=1, max_length=200)  # the press's idempotency key


_VALUE = re.compile(
    r"(?P<incident>[1-9][0-9]{0,17}):(?P<version>[0-9a-f]{1,64})(?::(?P<run>[1-9][0-9]{0,17}))?"
)


@dataclass(frozen=True, slots=True)
class ButtonValue:
    """``<incident id>:<card version>[:<run id>]`` (see
    :func:`integrations.slack.render.button_value`)."""

    incident_id: int
    version: str
    run_id: int = 0

    @classmethod
    def parse(cls, text: str) -> ButtonValue | None:
        found = _VALUE.fullmatch(text)
        if found is None:
            return None
        return cls(int(found["incident"]), found["version"], int(found["run"] or 0))


class PlanMetadata(BaseModel):
    """What the Auto-resolve dialog carries: the plan shown, so Confirm starts exactly that."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    kind: Literal["auto_resolve"] = "auto_resolve"
    incident_id: int = Field(ge=1)
    playbook_id: str = Field(default="", max_length=200)
    fingerprint: str = Field(default="", max_length=128)
    channel: str = ""
    message_ts: str = ""
    key: str = Field(min_length=1, max_length=200)  # the press's idempotency key


_CONFIRM = re.compile(
    r"(?P<incident>[1-9][0-9]{0,17}):(?P<fingerprint>[0-9a-f]{1,128}):(?P<playbook>[A-Za-z0-9._-]{0,200})"
)


@dataclass(frozen=True, slots=True)
class ConfirmValue:
    """``<incident id>:<plan fingerprint>:<playbook id>``: the Confirm button under a plan
    shown in answer to ``/incident auto-resolve``."""

    incident_id: int
    fingerprint: str
    playbook_id: str

    def __str__(self) -> str:
        return f"{self.incident_id}:{self.fingerprint}:{self.playbook_id}"

    @classmethod
    def parse(cls, text: str) -> ConfirmValue | None:
        found = _CONFIRM.fullmatch(text)
        if found is None:
            return None
        return cls(int(found["incident"]), found["fingerprint"], found["playbook"])
