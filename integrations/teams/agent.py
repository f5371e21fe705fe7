"""Inbound Teams traffic: ``POST /api/messages`` through the Agents SDK's FastAPI hosting.

Only this route checks the Bot Connector's JWT (the rest of the bot's HTTP server has its own
authentication). Four kinds of activity matter:

* ``conversationUpdate`` / ``installationUpdate``: the app was added to (or removed from) a
  team or chat: remember (or forget) where to post, and say which routing key it got;
* ``message``: a text command (see :mod:`integrations.teams.commands`), answered in a reply;
* ``invoke`` named ``adaptiveCard/action``: a card button (``Action.Execute``). The command
  runs as ``teams:<AAD object id>`` and the HTTP 200 answer carries the refreshed card (for
  the person who clicked; everyone else's copy is updated through the outbox). A refusal
  (role, illegal transition) answers with the card and the reason above it. The verb
  ``refresh`` (the card's ``refresh`` clause) answers with the asker's own view of the card:
  no buttons for a viewer, no Approve for the requester of the run (see
  :mod:`integrations.teams.views`).

Handlers parse, build a command and hand it to :class:`~bot.operations.Operations`; they hold
no business logic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    ContentTypes,
    InvokeResponse,
)
from microsoft_agents.hosting.core import (
    AgentApplication,
    AgentAuthConfiguration,
    ApplicationOptions,
    Connections,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.fastapi import CloudAdapter, start_agent_process
from msal.exceptions import MsalError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain.card import ActionKind, Card
from bot.domain.durations import parse_duration
from bot.domain.incident import Command, CommandKind
from bot.errors import BotError, NotFound
from bot.operations import Operations
from integrations.teams.charts import ChartLinks
from integrations.teams.commands import TeamsCommands, parse
from integrations.teams.conversations import (
    ConversationStore,
    channel_data,
    channel_key,
    personal_key,
    reference_of,
)
from integrations.teams.gate import ROUTE, TokenGate
from integrations.teams.keys import SigningKeys
from integrations.teams.plans import BACK_VERB, CONFIRM_VERB
from integrations.teams.pressers import LastPressers
from integrations.teams.refusals import Refusals
from integrations.teams.render import CUSTOM, REFRESH_VERB, render_notice
from integrations.teams.runs import TeamsRuns
from integrations.teams.shape import missing, unhandled
from integrations.teams.surface import card_activity, text_activity
from integrations.teams.views import CardViews

log = logging.getLogger(__name__)

SURFACE = "teams"
RUN_VERBS = (ActionKind.AUTO_RESOLVE, ActionKind.APPROVE_RUN, ActionKind.CANCEL_RUN)
ACTION_VERBS = tuple(k for k in ActionKind if k is not ActionKind.VIEW and k not in RUN_VERBS)
CHANNEL_SAVED = frozenset({"channelCreated", "channelRenamed", "channelRestored"})
STALE_CARD = "This card is out of date or damaged; open the incident in the console."


class ActionData(BaseModel):
    """What an ``Action.Execute`` sends: the card's data plus the inputs of its form."""

    model_config = ConfigDict(extra="forbid")
    incident_id: int = Field(ge=1)
    version: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=2000)
    duration: str = Field(default="", max_length=32)
    custom_duration: str = Field(default="", max_length=32)
    reason: str = Field(default="", max_length=2000)
    run_id: int = Field(default=0, ge=0)  # Approve, Cancel: the run the card names
    fingerprint: str = Field(default="", max_length=128)  # Confirm: the plan that was shown
    playbook_id: str = Field(default="", max_length=200)


def actor_of(activity: Activity) -> str:
    """``teams:<AAD object id>`` (the identity the roles file names)."""
    who = activity.from_property
    ident = (who.aad_object_id or who.id) if who else None
    return f"teams:{ident or 'unknown'}"


def user_of(activity: Activity) -> str:
    """The Teams user id (``29:…``) of whoever sent ``activity``, for a card's ``userIds``."""
    who = activity.from_property
    return (who.id or "") if who else ""


def command_for(kind: ActionKind, data: ActionData, actor: str, key: str) -> Command:
    """The command a card button stands for; raise ValueError for a bad custom duration."""
    duration: timedelta | None = None
    if kind is ActionKind.SUPPRESS:
        text = data.custom_duration if data.duration == CUSTOM else data.duration
        duration = parse_duration(text) if text.strip() else None
    return Command(
        kind=CommandKind(kind.value),
        actor=actor,
        surface=SURFACE,
        duration=duration,
        reason=data.reason.strip() if kind is ActionKind.SUPPRESS else "",
        note=data.note.strip() if kind is ActionKind.RESOLVE else "",
        idempotency_key=key,
    )


class TeamsAgent:
    """The SDK application behind ``/api/messages``."""

    def __init__(
        self,
        auth: AgentAuthConfiguration,
        connections: Connections,
        operations: Operations,
        conversations: ConversationStore,
        commands: TeamsCommands,
        refusals: Refusals | None,
        pressers: LastPressers,
        charts: ChartLinks | None = None,
        keys: SigningKeys | None = None,
    ) -> None:
        self.pressers = pressers
        self.views = CardViews(operations, pressers, charts)
        self._gate = TokenGate(auth, keys or SigningKeys(timeout=5.0), refusals)
        self._operations = operations
        self._conversations = conversations
        self._commands = commands
        self.adapter = CloudAdapter(connection_manager=connections)
        self.adapter.on_turn_error = self._on_turn_error
        self.app = AgentApplication[TurnState](
            ApplicationOptions(
                storage=MemoryStorage(),
                bot_app_id=auth.CLIENT_ID or "",
                start_typing_timer=False,
                remove_recipient_mention=True,
            ),
            connection_manager=connections,
        )
        self.app.activity(ActivityTypes.conversation_update)(self._on_conversation_update)
        self.app.activity(ActivityTypes.installation_update)(self._on_installation_update)
        self.app.message()(self._on_message)
        for kind in ACTION_VERBS:
            self.app.adaptive_card.action_execute(kind.value)(self._action_handler(kind))
        self.app.adaptive_card.action_execute(REFRESH_VERB)(self._refresh_handler)
        self._runs = TeamsRuns(operations, self.views)
        for verb in (*(k.value for k in RUN_VERBS), CONFIRM_VERB, BACK_VERB):
            self.app.adaptive_card.action_execute(verb)(self._run_handler(verb))

    # HTTP -------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post(ROUTE, include_in_schema=False)
        async def messages(request: Request) -> Response:
            peer = request.client.host if request.client else "?"
            identity = await self._gate.identify(request.headers.get("Authorization"), peer)
            if isinstance(identity, Response):
                return identity
            request.state.claims_identity = identity
            try:
                payload = await request.json()
            except ValueError:
                payload = None
            problem = missing(payload)
            if problem is not None:
                return JSONResponse({"error": problem}, status_code=400)
            try:
                response = await start_agent_process(request, self.app, self.adapter)
            except ValidationError:
                return JSONResponse({"error": "not a Bot Framework activity"}, status_code=400)
            except MsalError as exc:  # Entra ID's token endpoint failed before the turn began
                log.warning("Teams activity not handled: no token from Entra ID: %s", exc)
                answer = {"error": "no token from Entra ID to answer with; send it again later"}
                return JSONResponse(answer, status_code=503)
            if response is not None and response.status_code == HTTPStatus.NOT_IMPLEMENTED:
                # the SDK's answer to an invoke no handler takes (an unknown name or verb, or a
                # value that is not an Action.Execute): the request is what is wrong
                return JSONResponse({"error": unhandled(payload)}, status_code=400)
            return response if response is not None else Response(status_code=202)

        return router

    # activities -------------------------------------------------------------------------------

    async def _on_conversation_update(self, context: TurnContext, state: TurnState) -> None:
        activity = context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        added = any(m.id == bot_id for m in activity.members_added or [])
        removed = any(m.id == bot_id for m in activity.members_removed or [])
        event = channel_data(activity).event_type or ""
        if removed or event == "channelDeleted":
            await self._conversations.forget(reference_of(activity).conversation.id)
            return
        if not (added or event in CHANNEL_SAVED):
            return
        key = channel_key(activity)
        await self._conversations.save(key, reference_of(activity))
        log.info("Teams conversation stored as %r", key)
        if added:
            await context.send_activity(
                text_activity(
                    f"Incident bot is here. Route incident cards to this conversation with the "
                    f"key {key!r} (TEAMS_DEFAULT_CHANNEL or a route). Type help for commands."
                )
            )

    async def _on_installation_update(self, context: TurnContext, state: TurnState) -> None:
        activity = context.activity
        action = activity.action or ""
        if action.startswith("remove"):
            await self._conversations.forget(reference_of(activity).conversation.id)
        elif action.startswith("add"):
            await self._conversations.save(channel_key(activity), reference_of(activity))
            await self._remember_personal(activity)

    async def _remember_personal(self, activity: Activity) -> None:
        """A 1:1 chat is where direct messages to its person go (Teams lets a bot write to
        someone only in a conversation that person has had with it)."""
        conversation = activity.conversation
        if conversation is None or conversation.conversation_type != "personal":
            return
        key = personal_key(actor_of(activity))
        if await self._conversations.find(key) is None:
            await self._conversations.save(key, reference_of(activity))

    async def _on_message(self, context: TurnContext, state: TurnState) -> None:
        activity = context.activity
        where = await self._conversations.key_of(reference_of(activity).conversation.id)
        if where is None:
            where = channel_key(activity)
            await self._conversations.save(where, reference_of(activity))
        await self._remember_personal(activity)
        command = parse(activity.text or "")
        answer = await self._commands.answer(command, actor_of(activity), activity.id or "", where)
        if answer.card is not None:
            await context.send_activity(card_activity(answer.card))
        else:
            await context.send_activity(text_activity(answer.text))

    def _action_handler(
        self, kind: ActionKind
    ) -> Callable[[TurnContext, TurnState, Any], Awaitable[AdaptiveCardInvokeResponse]]:
        async def handle(
            context: TurnContext, state: TurnState, data: Any
        ) -> AdaptiveCardInvokeResponse:
            return await self._on_action(kind, context.activity, data)

        return handle

    async def _on_action(
        self, kind: ActionKind, activity: Activity, data: Any
    ) -> AdaptiveCardInvokeResponse:
        try:
            payload = ActionData.model_validate(data)
        except ValidationError:
            return _card_response(render_notice(STALE_CARD))
        await self.pressers.note(payload.incident_id, user_of(activity))
        key = f"teams:{activity.id}:{kind.value}:{payload.version}"
        notice = ""
        try:
            command = command_for(kind, payload, actor_of(activity), key)
            await self._operations.execute(payload.incident_id, command)
        except ValueError as exc:  # a custom duration that does not parse
            notice = str(exc)
        except NotFound as exc:
            return _card_response(render_notice(str(exc)))
        except BotError as exc:  # refused: role, illegal transition, …; audited by the core
            notice = str(exc)
        try:
            card = await self._operations.card(payload.incident_id)
        except NotFound as exc:
            return _card_response(render_notice(str(exc)))
        return _card_response(await self.view(card, activity, notice))

    async def _refresh_handler(
        self, context: TurnContext, state: TurnState, data: Any
    ) -> AdaptiveCardInvokeResponse:
        """Teams asks for this person's own view of a card (its ``refresh`` clause)."""
        try:
            payload = ActionData.model_validate(data)
            card = await self._operations.card(payload.incident_id)
        except ValidationError:
            return _card_response(render_notice(STALE_CARD))
        except NotFound as exc:
            return _card_response(render_notice(str(exc)))
        return _card_response(await self.view(card, context.activity))

    async def view(self, card: Card, activity: Activity, notice: str = "") -> dict[str, Any]:
        """The card as the person behind ``activity`` may use it, refreshing per user."""
        return await self.views.render(card, actor_of(activity), notice)

    def _run_handler(
        self, verb: str
    ) -> Callable[[TurnContext, TurnState, Any], Awaitable[AdaptiveCardInvokeResponse]]:
        async def handle(
            context: TurnContext, state: TurnState, data: Any
        ) -> AdaptiveCardInvokeResponse:
            return await self._on_run_action(verb, context.activity, data)

        return handle

    async def _on_run_action(
        self, verb: str, activity: Activity, data: Any
    ) -> AdaptiveCardInvokeResponse:
        """Auto-resolve (the plan to confirm), Confirm, Back, Approve, Cancel: the answer is a
        card for the person who clicked; everyone else's copy follows through the outbox."""
        try:
            payload = ActionData.model_validate(data)
        except ValidationError:
            return _card_response(render_notice(STALE_CARD))
        await self.pressers.note(payload.incident_id, user_of(activity))
        who = actor_of(activity)
        runs = self._runs
        if verb == ActionKind.AUTO_RESOLVE.value:
            content = await runs.plan(payload.incident_id, who, payload.playbook_id)
        elif verb == CONFIRM_VERB:
            key = f"teams:{activity.id}:confirm:{payload.fingerprint}"
            content = await runs.confirm(
                payload.incident_id, who, payload.fingerprint, payload.playbook_id, key
            )
        elif verb == BACK_VERB:
            content = await runs.card(payload.incident_id, who)
        else:
            approve = verb == ActionKind.APPROVE_RUN.value
            content = await runs.act_on_run(payload.incident_id, payload.run_id, who, approve)
        return _card_response(content)

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        log.error(
            "Teams %s activity failed: %s",
            context.activity.type if context.activity else "?",
            error,
            exc_info=error,
        )
        text = "Something went wrong on the bot's side; the details are in its log."
        try:
            if context.activity is not None and context.activity.type == ActivityTypes.invoke:
                body = _card_response(render_notice(text)).model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
                await context.send_activity(
                    Activity(
                        type=ActivityTypes.invoke_response,
                        value=InvokeResponse(status=int(HTTPStatus.OK), body=body),
                    )
                )
            else:
                await context.send_activity(text_activity(text))
        except Exception as again:  # the connector may be what failed; the log has the cause
            log.warning("could not tell the Teams user about the failure: %s", again)


def _card_response(content: dict[str, Any]) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(
        status_code=int(HTTPStatus.OK), type=ContentTypes.adaptive_card, value=content
    )
