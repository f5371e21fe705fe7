"""The bolt app: every listener acknowledges first, then its work runs through ``Operations``.

Slack's HTTP request (or Socket Mode envelope) is answered as soon as the listener has
acknowledged; the work continues in a task of its own (:class:`Inflight`). Listeners hold no
business logic: they read the payload and hand it to :class:`Buttons` or :class:`SlashCommands`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.card import ActionKind
from bot.errors import BotError
from integrations.slack.buttons import ACTING, WITH_DIALOG, Buttons, Respond, malformed
from integrations.slack.commands import UsageError, Verb, help_text, parse
from integrations.slack.modals import Invalid, ModalId, read_suppress
from integrations.slack.payloads import EventCallback, SlashCommand
from integrations.slack.plans import CONFIRM_ACTION, PLAN_MODAL
from integrations.slack.runs import Runs
from integrations.slack.slash import SlashCommands
from integrations.slack.surface import SlackChatSurface

log = logging.getLogger(__name__)

SEEN_EVENTS = 10_000


def ignored_action(action_id: str) -> str:
    return f"acknowledged and ignored Slack action {action_id!r}: no such button"


def ignored_view(callback_id: str) -> str:
    return f"acknowledged and ignored Slack dialog {callback_id!r}: no such dialog"


def redelivered_event(event_id: str, retry: str) -> str:
    return f"ignored Slack event {event_id} redelivered (retry {retry or '?'}): already handled"


def work_failed(error: BaseException | None) -> str:
    return f"work after a Slack acknowledgement failed: {error!r}"


def identity_unknown(error: BotError) -> str:
    return f"answering Slack without knowing the bot's own ids: auth.test failed ({error})"


class Inflight:
    """Work still running after its request was acknowledged (finished before shutdown)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(work_failed(task.exception()))

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float = 10.0) -> None:
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        if pending:
            await asyncio.wait(pending, timeout=grace)


class BotIdentity:
    """Who the bot is in Slack (``auth.test``, asked once and remembered), for bolt's authorize.

    Bolt's own single-workspace check asks ``auth.test`` on every request until one answer
    arrives: a burst of clicks just after start-up would make a burst of calls before the first
    acknowledgement. This asks once, for everyone waiting.
    """

    def __init__(self, surface: SlackChatSurface, token: str) -> None:
        self._surface = surface
        self._token = token
        self._answer: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def learn(self) -> dict[str, Any]:
        if self._answer is None:
            async with self._lock:
                if self._answer is None:
                    self._answer = await self._surface.call("auth.test", {}, read=True)
        return self._answer

    async def authorize(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        """The request's authorization; while Slack cannot be asked, the token alone (the
        request is signed, so it is Slack's; only "is this the bot itself" stays unknown)."""
        try:
            answer = await self.learn()
        except BotError as exc:
            log.warning(identity_unknown(exc))
            answer = {}
        return AuthorizeResult(
            enterprise_id=answer.get("enterprise_id") or enterprise_id,
            team_id=answer.get("team_id") or team_id,
            bot_user_id=answer.get("user_id"),
            bot_id=answer.get("bot_id"),
            bot_token=self._token,
            user_id=user_id,
        )


class EnvironmentTokenNotice(logging.Filter):
    """Drops bolt's notices that a ``SLACK_BOT_TOKEN`` it found in the environment is unused.

    Bolt reads ``SLACK_BOT_TOKEN`` from the environment whenever no ``token`` argument is given,
    and then warns that the token is unused because a ``client`` (or ``authorize``) was given as
    well. That variable is this bot's own setting: it is read and validated by
    ``SlackSettings``, and every request is authorized with it through ``authorize``, so the
    notice would only make a correct configuration look wrong. Every other bolt message passes.

    The notice cannot be avoided by passing the token instead: ``AsyncApp`` takes
    ``token or SLACK_BOT_TOKEN`` and then warns whenever that is set alongside ``client`` (which
    carries ``SLACK_API_URL``) or ``authorize`` (which asks ``auth.test`` once for everyone);
    without either, bolt would call Slack's default address and ask ``auth.test`` per request
    until one answer arrives.
    """

    NOTICES = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.NOTICES


def bolt_logger() -> logging.Logger:
    """The logger bolt reports through (``integrations.slack.bolt``), without the notices
    :class:`EnvironmentTokenNotice` drops."""
    logger = logging.getLogger(f"{__name__.rsplit('.', 1)[0]}.bolt")
    if not any(isinstance(f, EnvironmentTokenNotice) for f in logger.filters):
        logger.addFilter(EnvironmentTokenNotice())
    return logger


class SeenEvents:
    """Event ids handled by this process, so Slack's redeliveries are acknowledged only."""

    def __init__(self, size: int = SEEN_EVENTS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


def build_app(
    client: AsyncWebClient,
    identity: BotIdentity,
    signing_secret: str,
    buttons: Buttons,
    slash: SlashCommands,
    inflight: Inflight,
    runs: Runs,
) -> AsyncApp:
    """The bolt app; ``client`` carries no token (``identity`` authorizes every request).

    Every listener acknowledges, hands its work to ``inflight`` and returns, so bolt answers
    Slack as soon as the listener returns (``process_before_response=True``). With bolt's
    default (False) bolt would notice the ``ack()`` by polling every 10 ms: a floor of 10 ms
    on every answer and a p99 past 30 ms under load; the work runs after the answer either way.
    """

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:  # bolt passes arguments by these names
        return await identity.authorize(enterprise_id, team_id, user_id)

    app = AsyncApp(
        name="incident-bot",
        client=client,
        logger=bolt_logger(),
        authorize=authorize,
        signing_secret=signing_secret,
        process_before_response=True,
    )
    seen = SeenEvents()

    async def on_act(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        inflight.spawn(buttons.act(body, respond))

    async def on_dialog(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        inflight.spawn(buttons.open_dialog(body, respond))

    async def on_link(ack: AsyncAck) -> None:
        await ack()  # "View" opens the console in the browser; nothing to do here

    async def on_unknown_action(ack: AsyncAck, action: dict[str, Any]) -> None:
        await ack()
        log.info(ignored_action(str(action.get("action_id", ""))))

    async def on_suppress(ack: AsyncAck, body: dict[str, Any]) -> None:
        read = buttons.read_submission(body)
        if read is None:
            await ack()
            return
        submission, metadata = read
        try:
            entered = read_suppress(submission.view.state)
        except Invalid as exc:
            await ack(response_action="errors", errors=exc.errors)
            return
        await ack()
        inflight.spawn(buttons.suppress(submission, metadata, entered))

    async def on_resolve(ack: AsyncAck, body: dict[str, Any]) -> None:
        read = buttons.read_submission(body)
        await ack()
        if read is not None:
            inflight.spawn(buttons.resolve(*read))

    async def on_plan(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        inflight.spawn(runs.open_plan(body, respond))

    async def on_confirm(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        inflight.spawn(runs.confirm_button(body, respond))

    async def on_approve(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        inflight.spawn(runs.act_on_run(body, respond, approve=True))

    async def on_cancel_run(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        inflight.spawn(runs.act_on_run(body, respond, approve=False))

    async def on_plan_confirmed(ack: AsyncAck, body: dict[str, Any]) -> None:
        read = runs.read_plan(body)
        await ack()  # the dialog closes; the answer and the card follow
        if read is not None:
            inflight.spawn(runs.confirm(*read))

    async def on_unknown_view(ack: AsyncAck, view: dict[str, Any]) -> None:
        await ack()
        log.info(ignored_view(str(view.get("callback_id", ""))))

    async def on_command(ack: AsyncAck, body: dict[str, Any], respond: Respond) -> None:
        try:
            command = SlashCommand.model_validate(body)
            request = parse(command.text, slash.command)
        except ValidationError as exc:
            await ack()
            log.warning(malformed("slash command", exc))
            return
        except UsageError as exc:
            await ack(text=str(exc), response_type="ephemeral")
            return
        if request.verb is Verb.HELP:
            await ack(text=help_text(slash.command, request.unknown), response_type="ephemeral")
            return
        await ack()
        inflight.spawn(slash.reply_to_command(request, command, respond))

    async def on_mention(ack: AsyncAck, body: dict[str, Any], request: Any) -> None:
        await ack()
        try:
            callback = EventCallback.model_validate(body)
        except ValidationError as exc:
            log.warning(malformed("event", exc))
            return
        if not seen.first_time(callback.event_id):
            retry = (request.headers.get("x-slack-retry-num") or [""])[0]
            log.info(redelivered_event(callback.event_id, retry))
            return
        inflight.spawn(slash.reply_to_mention(callback))

    for kind in ACTING:
        app.action(kind.value)(on_act)
    for kind in WITH_DIALOG:
        app.action(kind.value)(on_dialog)
    app.action("view")(on_link)
    app.action(ActionKind.AUTO_RESOLVE.value)(on_plan)
    app.action(ActionKind.APPROVE_RUN.value)(on_approve)
    app.action(ActionKind.CANCEL_RUN.value)(on_cancel_run)
    app.action(CONFIRM_ACTION)(on_confirm)
    app.action(re.compile(r".+"))(on_unknown_action)
    app.view(ModalId.SUPPRESS.value)(on_suppress)
    app.view(ModalId.RESOLVE.value)(on_resolve)
    app.view(PLAN_MODAL)(on_plan_confirmed)
    app.view(re.compile(r".*"))(on_unknown_view)
    app.command(slash.command)(on_command)
    app.event("app_mention")(on_mention)
    return app
