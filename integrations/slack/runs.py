"""Auto-resolve, Approve and Cancel from Slack, after the request has been acknowledged.

* **Auto-resolve** on a card opens a dialog at once (``views.open`` with a "planning…" view:
  the trigger expires after 3 s), asks the engine for the dry run and replaces the dialog with
  the plan (``views.update``): steps, targets, parameters, risk, confidence and the gate's
  verdict. **Confirm** starts exactly that plan (its fingerprint travels in the dialog's
  ``private_metadata``); the run itself goes on in the background, the card shows its progress.
* **Approve** and **Cancel** on a card act on the run the card names. Slack cannot hide a
  button from one person, so the requester's own Approve is refused with a private answer.
* ``/incident auto-resolve INC-3 [playbook]`` answers privately with the plan and a Confirm
  button; ``approve RUN-7``, ``cancel-run RUN-7`` and ``killswitch on|off|status`` act at once.

Nothing here runs a playbook: ``start`` and ``approve`` only record the run.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from bot.errors import BotError, PermanentError
from bot.operations import Operations
from bot.textcommands import ChatRequest, Switch, Verb
from integrations.slack.answers import refused
from integrations.slack.buttons import Buttons, Respond, malformed, not_ours
from integrations.slack.identity import UserGroups, actor
from integrations.slack.payloads import BlockActions, ConfirmValue, PlanMetadata, ViewSubmission
from integrations.slack.plans import (
    PLAN_MODAL,
    confirm_blocks,
    kill_switch_text,
    plan_view,
    planning_view,
    problem_view,
    run_changed,
    run_started,
)
from integrations.slack.surface import NAME, SlackChatSurface
from playbooks.service import Remediation

log = logging.getLogger(__name__)

NOT_SET_UP = "auto-resolve is not set up on this bot: no playbooks are loaded"


def plan_failed(error: BotError) -> str:
    return f"could not show an Auto-resolve plan in Slack: {error}"


def remediation_of(operations: Operations) -> Remediation:
    found: Remediation | None = getattr(operations, "remediation", None)
    if found is None:
        raise PermanentError(NOT_SET_UP)
    return found


class Runs:
    def __init__(
        self,
        operations: Operations,
        groups: UserGroups,
        surface: SlackChatSurface,
        buttons: Buttons,
    ) -> None:
        self._operations = operations
        self._groups = groups
        self._surface = surface
        self._buttons = buttons

    # the Auto-resolve button and its dialog ----------------------------------------------------

    async def open_plan(self, body: dict[str, Any], respond: Respond) -> None:
        read = self._buttons.read_press(body)
        if read is None:
            return
        press, value, key = read
        metadata = PlanMetadata(
            incident_id=value.incident_id,
            channel=press.channel_id,
            message_ts=press.container.message_ts,
            key=key,
        )
        try:
            opened = await self._surface.call(
                "views.open", {"trigger_id": press.trigger_id, "view": planning_view(metadata)}
            )
        except BotError as exc:
            log.warning(plan_failed(exc))
            await _respond(respond, ":x: The Auto-resolve dialog did not open; please press again.")
            return
        view_id = str((opened.get("view") or {}).get("id", ""))
        try:
            remediation = remediation_of(self._operations)
            groups = await self._groups.of(press.user.id)
            preview = await remediation.preview(
                value.incident_id, actor(press.user.id), groups=groups
            )
            shown = plan_view(metadata, preview)
        except BotError as exc:
            shown = problem_view(metadata, refused(exc))
        try:
            await self._surface.call("views.update", {"view_id": view_id, "view": shown})
        except BotError as exc:
            log.warning(plan_failed(exc))

    def read_plan(self, body: dict[str, Any]) -> tuple[ViewSubmission, PlanMetadata] | None:
        try:
            submission = ViewSubmission.model_validate(body)
            metadata = PlanMetadata.model_validate_json(submission.view.private_metadata)
        except ValidationError as exc:
            log.warning(malformed("Auto-resolve confirmation", exc))
            return None
        if submission.view.callback_id != PLAN_MODAL or not metadata.fingerprint:
            log.warning(malformed("Auto-resolve confirmation", ValueError("not a plan")))
            return None
        return submission, metadata

    async def confirm(self, submission: ViewSubmission, metadata: PlanMetadata) -> None:
        """Start the plan the dialog showed; say how it went privately in the card's channel."""
        user = submission.user.id
        answer = await self._start(
            user, metadata.incident_id, metadata.fingerprint, metadata.playbook_id, metadata.key
        )
        await self._surface.post_ephemeral(metadata.channel, user, answer)

    async def confirm_button(self, body: dict[str, Any], respond: Respond) -> None:
        """Confirm under a plan shown by ``/incident auto-resolve``."""
        try:
            press = BlockActions.model_validate(body)
        except ValidationError as exc:
            log.warning(malformed("button press", exc))
            return
        value = ConfirmValue.parse(press.actions[0].value)
        if value is None:
            log.warning(not_ours(press.actions[0].value))
            return
        key = f"slack:confirm:{press.user.id}:{value.fingerprint}:{press.actions[0].action_ts}"
        answer = await self._start(
            press.user.id, value.incident_id, value.fingerprint, value.playbook_id, key[:200]
        )
        await _respond(respond, answer, replace=True)

    async def _start(
        self, user: str, incident_id: int, fingerprint: str, playbook_id: str, key: str
    ) -> str:
        try:
            remediation = remediation_of(self._operations)
            groups = await self._groups.of(user)
            run = await remediation.start(
                incident_id,
                actor(user),
                NAME,
                fingerprint,
                playbook_id=playbook_id or None,
                idempotency_key=key,
                groups=groups,
            )
        except BotError as exc:
            return refused(exc)
        return run_started(run)

    # Approve and Cancel ------------------------------------------------------------------------

    async def act_on_run(self, body: dict[str, Any], respond: Respond, approve: bool) -> None:
        read = self._buttons.read_press(body)
        if read is None:
            return
        press, value, _ = read
        if not value.run_id:
            log.warning(not_ours(press.actions[0].value))
            return
        answer = await self._approve_or_cancel(press.user.id, value.run_id, approve)
        await _respond(respond, answer)

    async def _approve_or_cancel(
        self, user: str, run_id: int, approve: bool, reason: str = ""
    ) -> str:
        try:
            remediation = remediation_of(self._operations)
            if approve:
                groups = await self._groups.of(user)
                run = await remediation.approve(run_id, actor(user), NAME, groups=groups)
                return run_changed(run, "approved")
            run = await remediation.cancel(run_id, actor(user), NAME, reason)
            return run_changed(run, "cancelled")
        except BotError as exc:
            return refused(exc)

    # slash commands ------------------------------------------------------------------------------

    async def answer(self, request: ChatRequest, user: str) -> tuple[str, list[dict[str, Any]]]:
        """The private answer to a remediation subcommand: (text, blocks); refusals too."""
        try:
            return await self._answer(request, user)
        except BotError as exc:
            return refused(exc), []

    async def _answer(self, request: ChatRequest, user: str) -> tuple[str, list[dict[str, Any]]]:
        if request.verb is Verb.AUTO_RESOLVE:
            assert request.incident is not None
            groups = await self._groups.of(user)
            preview = await remediation_of(self._operations).preview(
                request.incident, actor(user), request.playbook or None, groups
            )
            text = f"Plan for {preview.human_id}: {preview.playbook_title}"
            return text, confirm_blocks(preview)
        if request.verb in (Verb.APPROVE, Verb.CANCEL_RUN):
            assert request.run is not None
            approve = request.verb is Verb.APPROVE
            return await self._approve_or_cancel(user, request.run, approve, request.text), []
        assert request.verb is Verb.KILLSWITCH and request.switch is not None
        if request.switch is Switch.STATUS:
            return kill_switch_text(await self._operations.kill_switch_status()), []
        groups = await self._groups.of(user)
        change = await self._operations.kill_switch(
            request.switch is Switch.ON, actor(user), NAME, request.text, groups
        )
        text = kill_switch_text(change.switch)
        return (text if change.changed else f"Nothing changed. {text}"), []


async def _respond(respond: Respond, text: str, replace: bool = False) -> None:
    try:
        await respond(text=text, response_type="ephemeral", replace_original=replace)
    except Exception as exc:  # respond() raises whatever its HTTP client raises
        log.warning(f"could not answer through response_url: {type(exc).__name__}")


REMEDIATION_VERBS = frozenset({Verb.AUTO_RESOLVE, Verb.APPROVE, Verb.CANCEL_RUN, Verb.KILLSWITCH})
