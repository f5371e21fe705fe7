"""Running a parsed slash command (or a mention of the bot) and wording the private answer."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from bot.domain.incident import Command, CommandKind, human_id
from bot.errors import BotError
from bot.maintenance import chat_answer
from bot.operations import Operations
from bot.textcommands import KINDS
from integrations.slack.answers import (
    done,
    failed,
    incident_list,
    refused,
    rule_states,
    silence_created,
)
from integrations.slack.buttons import Respond, answer_lost
from integrations.slack.commands import SlashRequest, UsageError, Verb, help_text, parse
from integrations.slack.identity import UserGroups, actor
from integrations.slack.payloads import EventCallback, SlashCommand
from integrations.slack.render import render_card
from integrations.slack.runs import REMEDIATION_VERBS, Runs
from integrations.slack.surface import NAME, SlackChatSurface

log = logging.getLogger(__name__)

LIST_LIMIT = 20
_MENTION = re.compile(r"^(\s*<@[A-Z0-9]+(?:\|[^>]*)?>)+\s*")
COMMANDS = KINDS  # the verbs that act on an incident


def command_crashed(verb: str) -> str:
    return f"slash command {verb!r} failed unexpectedly"


@dataclass(frozen=True, slots=True)
class Answer:
    """An ephemeral answer: mrkdwn ``text``, and ``blocks`` when a card is shown."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False


class SlashCommands:
    def __init__(
        self,
        operations: Operations,
        groups: UserGroups,
        surface: SlackChatSurface,
        console_url: str,
        command: str,
        runs: Runs,
    ) -> None:
        self._runs = runs
        self._operations = operations
        self._surface = surface
        self._groups = groups
        self._console_url = console_url
        self.command = command

    async def reply_to_command(
        self, request: SlashRequest, command: SlashCommand, respond: Respond
    ) -> None:
        """Answer ``/incident …`` privately through its response_url."""
        # the trigger id names one invocation; a response_url is a credential: only its digest
        fallback = hashlib.blake2b(command.response_url.encode(), digest_size=16).hexdigest()
        key = f"slack:command:{command.trigger_id or fallback}"
        answer = await self.answer(request, command.user_id, key)
        if answer.duplicate:
            return
        try:
            await respond(text=answer.text, blocks=answer.blocks or None, response_type="ephemeral")
        except Exception as exc:  # respond() raises whatever its HTTP client raises
            log.warning(answer_lost(exc))

    async def reply_to_mention(self, callback: EventCallback) -> None:
        """Answer ``@bot <command>`` with a message only the person who wrote it sees."""
        event = callback.event
        try:
            request = parse(_MENTION.sub("", event.text), self.command)
        except UsageError as exc:
            await self._surface.post_ephemeral(event.channel, event.user, str(exc))
            return
        answer = await self.answer(request, event.user, f"slack:event:{callback.event_id}")
        if not answer.duplicate:
            await self._surface.post_ephemeral(event.channel, event.user, answer.text)

    async def answer(self, request: SlashRequest, user_id: str, key: str) -> Answer:
        """Run ``request`` for ``user_id``; ``key`` makes a redelivered request apply once."""
        try:
            return await self._answer(request, user_id, key)
        except BotError as exc:
            return Answer(refused(exc))
        except Exception:  # an unexpected bug must still get an answer to the person
            log.exception(command_crashed(request.verb.value))
            return Answer(failed())

    async def _answer(self, request: SlashRequest, user_id: str, key: str) -> Answer:
        ops = self._operations
        if request.verb is Verb.HELP:
            return Answer(help_text(self.command, request.unknown))
        if request.verb is Verb.LIST:
            found = await ops.incidents(request.scope.states, LIST_LIMIT)
            return Answer(incident_list(found, request.scope, self._console_url))
        if request.verb is Verb.RULES:
            return Answer(rule_states(await ops.rules()))
        if request.verb in REMEDIATION_VERBS:
            text, blocks = await self._runs.answer(request, user_id)
            return Answer(text, blocks)
        groups = await self._groups.of(user_id)
        if request.verb is Verb.MAINTENANCE:
            assert request.window is not None
            text = await chat_answer(
                ops.maintenance,
                request.window,
                request.matchers,
                request.text,
                actor(user_id),
                NAME,
                groups,
            )
            return Answer(text)
        if request.verb is Verb.SILENCE:
            assert request.duration is not None
            info = await ops.silence(
                request.matchers, request.duration, request.text, actor(user_id), groups
            )
            return Answer(silence_created(info))
        assert request.incident is not None
        if request.verb is Verb.SHOW:
            message = render_card(await ops.card(request.incident), self._console_url)
            return Answer(message["text"], message["blocks"])
        kind = COMMANDS[request.verb]
        command = Command(
            kind,
            actor(user_id),
            NAME,
            duration=request.duration,
            reason=request.text if kind in (CommandKind.SUPPRESS, CommandKind.REOPEN) else "",
            note=request.text if kind is CommandKind.RESOLVE else "",
            idempotency_key=key,
        )
        outcome = await ops.execute(request.incident, command, groups)
        return Answer(done(outcome.message, human_id(request.incident)), [], outcome.duplicate)
