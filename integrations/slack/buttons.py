"""Card buttons and the dialogs behind them, after the request has been acknowledged.

Acknowledge, Unacknowledge, Unsuppress, Reopen, Escalate and Re-analyse act at once; Suppress
and Resolve open a dialog first (``views.open`` before any other work: the trigger expires after
3 s) and act on its submission. Every press carries an idempotency key built from what Slack
sends with it (the action, the person, the card's message and the button's value, which names
the card version they saw), so a double click or a retried request changes the incident once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from bot.domain.card import ActionKind
from bot.domain.incident import Command, CommandKind
from bot.errors import BotError
from bot.operations import Operations
from integrations.slack.answers import failed, refused
from integrations.slack.identity import UserGroups, actor
from integrations.slack.modals import (
    ModalId,
    SuppressInput,
    read_metadata,
    read_note,
    read_suppress,
    resolve_view,
    suppress_view,
)
from integrations.slack.payloads import BlockActions, ButtonValue, ModalMetadata, ViewSubmission
from integrations.slack.surface import NAME, SlackChatSurface

log = logging.getLogger(__name__)

ACTING: dict[ActionKind, CommandKind] = {
    ActionKind.ACKNOWLEDGE: CommandKind.ACKNOWLEDGE,
    ActionKind.UNACKNOWLEDGE: CommandKind.UNACKNOWLEDGE,
    ActionKind.UNSUPPRESS: CommandKind.UNSUPPRESS,
    ActionKind.REOPEN: CommandKind.REOPEN,
    ActionKind.ESCALATE: CommandKind.ESCALATE,
    ActionKind.REANALYSE: CommandKind.REANALYSE,
}
WITH_DIALOG = (ActionKind.SUPPRESS, ActionKind.RESOLVE)
MAX_KEY = 160

Respond = Callable[..., Awaitable[Any]]


def press_key(action_id: str, user_id: str, message_ts: str, value: str) -> str:
    """The idempotency key of one press (the same for a double click or a retried request)."""
    key = f"slack:{action_id}:{user_id}:{message_ts}:{value}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return f"slack:{action_id}:{digest}"


def malformed(what: str, error: Exception) -> str:
    return f"ignored a Slack {what} the bot cannot read: {error}"


def not_ours(value: str) -> str:
    return f"ignored a button press whose value the bot did not make: {value[:80]!r}"


def answer_lost(error: Exception) -> str:
    return f"could not answer through response_url: {type(error).__name__}"


def dialog_failed(kind: str, error: BotError) -> str:
    return f"could not open the {kind} dialog: {error}"


def command_failed(kind: str, incident_id: int) -> str:
    return f"{kind} on INC-{incident_id} from Slack failed unexpectedly"


class Buttons:
    def __init__(self, operations: Operations, groups: UserGroups, surface: SlackChatSurface):
        self._operations = operations
        self._groups = groups
        self._surface = surface
        self._running: dict[str, asyncio.Future[str]] = {}

    # presses ---------------------------------------------------------------------------------

    def read_press(self, body: dict[str, Any]) -> tuple[BlockActions, ButtonValue, str] | None:
        """The press, the card it came from and its key; None (logged) when unreadable."""
        try:
            press = BlockActions.model_validate(body)
        except ValidationError as exc:
            log.warning(malformed("button press", exc))
            return None
        action = press.actions[0]
        value = ButtonValue.parse(action.value)
        if value is None:
            log.warning(not_ours(action.value))
            return None
        key = press_key(action.action_id, press.user.id, press.container.message_ts, action.value)
        return press, value, key

    async def act(self, body: dict[str, Any], respond: Respond) -> None:
        """Buttons without a dialog: run the command now."""
        read = self.read_press(body)
        if read is None:
            return
        press, value, key = read
        kind = ACTING[ActionKind(press.actions[0].action_id)]
        command = Command(kind, actor(press.user.id), NAME, idempotency_key=key)
        answer = await self._run(value.incident_id, command, press.user.id)
        if answer:
            await self._respond(respond, answer)

    async def open_dialog(self, body: dict[str, Any], respond: Respond) -> None:
        """Suppress, Resolve: open the dialog first, then fill in what takes time."""
        read = self.read_press(body)
        if read is None:
            return
        press, value, key = read
        kind = ActionKind(press.actions[0].action_id)
        metadata = ModalMetadata(
            kind="suppress" if kind is ActionKind.SUPPRESS else "resolve",
            incident_id=value.incident_id,
            channel=press.channel_id,
            message_ts=press.container.message_ts,
            key=key,
        )
        view = suppress_view(metadata) if kind is ActionKind.SUPPRESS else resolve_view(metadata)
        try:
            opened = await self._surface.call(
                "views.open", {"trigger_id": press.trigger_id, "view": view}
            )
        except BotError as exc:
            log.warning(dialog_failed(kind.value, exc))
            await self._respond(respond, ":x: The dialog did not open; please press again.")
            return
        if kind is ActionKind.SUPPRESS:
            await self._preview(metadata, opened.get("view") or {})

    async def _preview(self, metadata: ModalMetadata, view: dict[str, Any]) -> None:
        try:
            hidden = await self._operations.alerts_of(metadata.incident_id)
            update: dict[str, Any] = {
                "view_id": view.get("id", ""),
                "view": suppress_view(metadata, hidden),
            }
            if view.get("hash"):
                update["hash"] = view["hash"]
            await self._surface.call("views.update", update)
        except BotError as exc:  # the dialog still works without its preview line
            log.info(dialog_failed("suppress preview", exc))

    # dialog submissions ----------------------------------------------------------------------

    def read_submission(self, body: dict[str, Any]) -> tuple[ViewSubmission, ModalMetadata] | None:
        try:
            submission = ViewSubmission.model_validate(body)
            metadata = read_metadata(submission.view.private_metadata)
        except (ValidationError, ValueError) as exc:
            log.warning(malformed("dialog submission", exc))
            return None
        expected = ModalId.SUPPRESS if metadata.kind == "suppress" else ModalId.RESOLVE
        if submission.view.callback_id != expected.value:
            log.warning(malformed("dialog submission", ValueError("callback id mismatch")))
            return None
        return submission, metadata

    async def suppress(
        self, submission: ViewSubmission, metadata: ModalMetadata, entered: SuppressInput
    ) -> None:
        command = Command(
            CommandKind.SUPPRESS,
            actor(submission.user.id),
            NAME,
            duration=entered.duration,
            reason=entered.reason,
            idempotency_key=metadata.key,
        )
        answer = await self._run(metadata.incident_id, command, submission.user.id)
        if answer:
            await self._surface.post_ephemeral(metadata.channel, submission.user.id, answer)

    async def resolve(self, submission: ViewSubmission, metadata: ModalMetadata) -> None:
        command = Command(
            CommandKind.RESOLVE,
            actor(submission.user.id),
            NAME,
            note=read_note(submission.view.state),
            idempotency_key=metadata.key,
        )
        answer = await self._run(metadata.incident_id, command, submission.user.id)
        if answer:
            await self._surface.post_ephemeral(metadata.channel, submission.user.id, answer)

    # shared ----------------------------------------------------------------------------------

    async def _run(self, incident_id: int, command: Command, user_id: str) -> str:
        """Execute; "" when done (the card and its thread show it), else what to tell them.

        A press whose twin is still running here waits for it and says nothing: the twin
        answers. (A twin that comes later finds the idempotency key and changes nothing.)
        """
        key = command.idempotency_key
        if not key:
            return await self._execute(incident_id, command, user_id)
        running = self._running.get(key)
        if running is not None:
            await asyncio.wait({running})
            return ""
        task = asyncio.ensure_future(self._execute(incident_id, command, user_id))
        self._running[key] = task
        try:
            return await asyncio.shield(task)
        finally:
            self._running.pop(key, None)

    async def _execute(self, incident_id: int, command: Command, user_id: str) -> str:
        try:
            groups = await self._groups.of(user_id)
            await self._operations.execute(incident_id, command, groups)
        except BotError as exc:
            return refused(exc)
        except Exception:  # an unexpected bug must still get an answer to the person
            log.exception(command_failed(command.kind.value, incident_id))
            return failed()
        return ""

    @staticmethod
    async def _respond(respond: Respond, text: str) -> None:
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:  # respond() raises whatever its HTTP client raises
            log.warning(answer_lost(exc))


__all__ = ["ACTING", "WITH_DIALOG", "Buttons", "SuppressInput", "press_key", "read_suppress"]
