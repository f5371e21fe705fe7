"""Text commands typed to the bot in Teams (``@Incident bot ack INC-12``), like the slash command.

``list [open|acked|suppressed|resolved|all]`` · ``show INC-n`` · ``ack INC-n`` ·
``unack INC-n`` · ``suppress INC-n <duration> <reason…>`` · ``unsuppress INC-n`` ·
``resolve INC-n [note…]`` · ``reopen INC-n [reason…]`` · ``escalate INC-n`` ·
``reanalyse INC-n`` · ``silence field=value [field!=value …] <duration> <reason…>`` ·
``rules`` · ``auto-resolve INC-n [playbook]`` · ``approve RUN-n`` · ``cancel-run RUN-n`` ·
``killswitch on reason…|off|status`` · ``maintenance list|add …|remove NAME`` · ``help``.
Anything else gets the help. :func:`parse` is pure; :class:`TeamsCommands` runs a parsed
command against :class:`~bot.operations.Operations` and says what happened.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain.card import Card
from bot.domain.incident import Command, CommandKind, Incident, human_id
from bot.errors import BotError
from bot.maintenance import chat_answer
from bot.operations import ACTIVE, Operations
from bot.textcommands import KINDS, SUMMARY, USAGE, Switch, UsageError, Verb, WindowRequest
from bot.textcommands import parse as parse_text
from integrations.teams.render import render_card, render_lines
from integrations.teams.runs import TeamsRuns

SURFACE = "teams"
REMEDIATION_VERBS = frozenset({Verb.AUTO_RESOLVE, Verb.APPROVE, Verb.CANCEL_RUN, Verb.KILLSWITCH})
LIST_LIMIT = 20


HELP = tuple(f"{USAGE[verb]} — {SUMMARY[verb]}" for verb in USAGE)
_MENTION = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class TextCommand:
    verb: Verb
    incident: str = ""
    states: tuple[str, ...] = ACTIVE
    duration: timedelta | None = None
    text: str = ""  # the reason or note
    matchers: tuple[str, ...] = ()
    problem: str = ""  # why the text did not parse (the help follows it)
    run: int | None = None  # approve, cancel-run
    switch: Switch | None = None  # killswitch
    playbook: str = ""  # auto-resolve
    window: WindowRequest | None = None  # maintenance


@dataclass(frozen=True, slots=True)
class Answer:
    """What the bot says back: text, or a card (an Adaptive Card's JSON)."""

    text: str = ""
    card: dict[str, Any] | None = None


def clean(text: str) -> str:
    """Message text without mentions, HTML markup and extra spaces."""
    without = _TAG.sub(" ", _MENTION.sub(" ", text or ""))
    return " ".join(html.unescape(without).split())


def parse(text: str) -> TextCommand:
    """The command in a message (the grammar every chat surface shares: ``bot.textcommands``);
    anything malformed or unknown becomes the help with the reason."""
    try:
        request = parse_text(clean(text).lstrip("/"), command="")
    except UsageError as exc:
        return TextCommand(Verb.HELP, problem=str(exc))
    if request.unknown:
        return TextCommand(Verb.HELP, problem=f"I don't know {request.unknown!r}.")
    return TextCommand(
        request.verb,
        incident=human_id(request.incident) if request.incident else "",
        states=request.scope.states,
        duration=request.duration,
        text=request.text,
        matchers=request.matchers,
        run=request.run,
        switch=request.switch,
        playbook=request.playbook,
        window=request.window,
    )


class TeamsCommands:
    """Runs text commands for one person (``teams:<AAD object id>``) and words the answer."""

    def __init__(self, operations: Operations, console_url: str) -> None:
        self._operations = operations
        self._console_url = console_url
        self._runs = TeamsRuns(operations)

    async def answer(
        self, command: TextCommand, actor: str, request_id: str, where: str = ""
    ) -> Answer:
        """Run ``command``; a refusal is an answer too (its text says why)."""
        try:
            return await self._run(command, actor, request_id, where)
        except BotError as exc:
            return Answer(text=str(exc))

    async def _run(self, command: TextCommand, actor: str, request_id: str, where: str) -> Answer:
        verb = command.verb
        if verb is Verb.HELP:
            return Answer(card=self.help_card(command.problem, where))
        if verb is Verb.LIST:
            found = await self._operations.incidents(command.states, LIST_LIMIT)
            return Answer(card=self._list_card(found, command.states))
        if verb is Verb.RULES:
            return Answer(card=await self._rules_card())
        if verb in REMEDIATION_VERBS:
            text, shown = await self._runs.answer(
                verb,
                actor,
                command.incident,
                command.playbook,
                command.run,
                command.switch,
                command.text,
            )
            return Answer(text=text, card=shown)
        if verb is Verb.SHOW:
            card: Card = await self._operations.card(command.incident)
            return Answer(card=render_card(card))
        if verb is Verb.MAINTENANCE:
            assert command.window is not None
            text = await chat_answer(
                self._operations.maintenance,
                command.window,
                command.matchers,
                command.text,
                actor,
                SURFACE,
            )
            return Answer(text=text)
        if verb is Verb.SILENCE:
            assert command.duration is not None
            info = await self._operations.silence(
                command.matchers, command.duration, command.text, actor
            )
            matchers = " ".join(str(m) for m in info.matchers)
            covered = f"{info.matching_now} active incident{'s' if info.matching_now != 1 else ''}"
            return Answer(
                text=f"Silence {info.id} ({matchers}) until {info.ends_at:%Y-%m-%d %H:%M} UTC: "
                f"{info.reason}. It covers {covered} now."
            )
        kind = KINDS[verb]
        outcome = await self._operations.execute(
            command.incident,
            Command(
                kind=kind,
                actor=actor,
                surface=SURFACE,
                duration=command.duration,
                reason=command.text if kind is not CommandKind.RESOLVE else "",
                note=command.text if kind is CommandKind.RESOLVE else "",
                idempotency_key=f"teams:{request_id}:{kind.value}",
            ),
        )
        again = " (already done)" if outcome.duplicate else ""
        return Answer(text=f"{outcome.incident.human_id}: {outcome.message}{again}")

    def help_card(self, problem: str = "", where: str = "") -> dict[str, Any]:
        lines = [problem] if problem else []
        lines.extend(HELP)
        footer = (
            f"Cards reach this conversation when a route names {where!r}."
            if where
            else "Add the app to a channel to receive incident cards there."
        )
        return render_lines("Incident bot commands", lines, footer)

    def _list_card(self, incidents: list[Incident], states: tuple[str, ...]) -> dict[str, Any]:
        title = "Active incidents" if states == ACTIVE else f"Incidents ({', '.join(states)})"
        lines = [
            f"{i.human_id} · {i.severity.value} · {i.state.value} · {i.title}"
            + (f" ({i.service})" if i.service else "")
            for i in incidents
        ]
        if not lines:
            lines = ["None."]
        more = " (the first 20)" if len(incidents) >= LIST_LIMIT else ""
        return render_lines(f"{title}{more}", lines, f"All incidents: {self._console_url}/")

    async def _rules_card(self) -> dict[str, Any]:
        rules = await self._operations.rules()
        lines = []
        for rule in rules:
            state = "enabled" if rule.enabled else "disabled"
            ran = "not run yet"
            if rule.last_run_at:
                ran = f"last run {rule.last_run_at:%Y-%m-%d %H:%M} UTC"
            line = f"{rule.id} · {state} · {ran} · {rule.last_hits} hits"
            if rule.last_error:
                line += f" · failing ({rule.consecutive_failures}x): {rule.last_error}"
            lines.append(line)
        return render_lines(f"Detection rules ({len(rules)})", lines or ["None loaded."])
