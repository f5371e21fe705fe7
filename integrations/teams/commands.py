"""Text commands typed to the bot in Teams (``@Incident bot ack INC-12``), like the slash command.

``list [open|acked|suppressed|resolved|all]`` · ``show INC-n`` · ``ack INC-n`` ·
``unack INC-n`` · ``suppress INC-n <duration> <reason…>`` · ``unsuppress INC-n`` ·
``resolve INC-n [note…]`` · ``reopen INC-n [reason…]`` · ``escalate INC-n`` ·
``reanalyse INC-n`` · ``silence field=value [field!=value …] <duration> <reason…>`` ·
``rules`` · ``help``.
Anything else gets the help. :func:`parse` is pure; :class:`TeamsCommands` runs a parsed
command against :class:`~bot.operations.Operations` and says what happened.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.domain.card import Card
from bot.domain.durations import parse_duration
from bot.domain.incident import Command, CommandKind, Incident, State
from bot.errors import BotError
from bot.operations import ACTIVE, Operations
from integrations.teams.render import render_card, render_lines

SURFACE = "teams"
LIST_LIMIT = 20


class Verb(StrEnum):
    LIST = "list"
    SHOW = "show"
    ACK = "ack"
    UNACK = "unack"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    REANALYSE = "reanalyse"
    SILENCE = "silence"
    RULES = "rules"
    HELP = "help"


ALIASES = {
    "acknowledge": Verb.ACK,
    "unacknowledge": Verb.UNACK,
    "ls": Verb.LIST,
    "reanalyze": Verb.REANALYSE,
}
KINDS = {
    Verb.ACK: CommandKind.ACKNOWLEDGE,
    Verb.UNACK: CommandKind.UNACKNOWLEDGE,
    Verb.SUPPRESS: CommandKind.SUPPRESS,
    Verb.UNSUPPRESS: CommandKind.UNSUPPRESS,
    Verb.RESOLVE: CommandKind.RESOLVE,
    Verb.REOPEN: CommandKind.REOPEN,
    Verb.ESCALATE: CommandKind.ESCALATE,
    Verb.REANALYSE: CommandKind.REANALYSE,
}
STATES: dict[str, tuple[str, ...]] = {
    "open": (State.OPEN.value,),
    "acked": (State.ACKNOWLEDGED.value,),
    "acknowledged": (State.ACKNOWLEDGED.value,),
    "suppressed": (State.SUPPRESSED.value,),
    "resolved": (State.RESOLVED.value,),
    "active": ACTIVE,
    "all": tuple(s.value for s in State),
}
HELP = (
    "list [open|acked|suppressed|resolved|all] — the incidents (active ones by default)",
    "show INC-12 — one incident's card",
    "ack INC-12 · unack INC-12 — acknowledge, or take it back",
    "suppress INC-12 1h deploy in progress — quiet it for a while, with a reason",
    "unsuppress INC-12 — end a suppression",
    "resolve INC-12 rolled back the release — resolve, with an optional note",
    "reopen INC-12 — reopen a resolved incident",
    "escalate INC-12 — page the on-call now",
    "reanalyse INC-12 — ask for the root cause again",
    "silence service=checkout host!=web-9 2h maintenance — mute matching alerts",
    "rules — the detection rules and how their last runs went",
    "help — this list",
)
USAGE = {
    Verb.SHOW: "show INC-12",
    Verb.ACK: "ack INC-12",
    Verb.UNACK: "unack INC-12",
    Verb.SUPPRESS: "suppress INC-12 1h deploy in progress",
    Verb.UNSUPPRESS: "unsuppress INC-12",
    Verb.RESOLVE: "resolve INC-12 [note]",
    Verb.REOPEN: "reopen INC-12 [reason]",
    Verb.ESCALATE: "escalate INC-12",
    Verb.REANALYSE: "reanalyse INC-12",
    Verb.SILENCE: "silence service=checkout 2h maintenance",
}
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
    words = clean(text).split()
    if not words:
        return TextCommand(Verb.HELP)
    name = words[0].lower().lstrip("/")
    verb = ALIASES.get(name) or next((v for v in Verb if v.value == name), None)
    args = words[1:]
    if verb is None:
        return TextCommand(Verb.HELP, problem=f"I don't know {words[0]!r}.")
    if verb in (Verb.HELP, Verb.RULES):
        return TextCommand(verb)
    if verb is Verb.LIST:
        which = args[0].lower() if args else "active"
        if which not in STATES or len(args) > 1:
            return TextCommand(Verb.HELP, problem=f"list takes one of {', '.join(STATES)}.")
        return TextCommand(verb, states=STATES[which])
    if verb is Verb.SILENCE:
        return _silence(args)
    if not args:
        return _usage(verb, "which incident?")
    incident, rest = args[0], args[1:]
    if verb is Verb.SUPPRESS:
        if len(rest) < 2:
            return _usage(verb, "a suppression needs a duration and a reason.")
        try:
            duration = parse_duration(rest[0])
        except ValueError as exc:
            return _usage(verb, f"{exc}.")
        return TextCommand(verb, incident=incident, duration=duration, text=" ".join(rest[1:]))
    if verb in (Verb.RESOLVE, Verb.REOPEN):
        return TextCommand(verb, incident=incident, text=" ".join(rest))
    if rest:
        return _usage(verb, f"{verb.value} takes only the incident id.")
    return TextCommand(verb, incident=incident)


def _silence(args: list[str]) -> TextCommand:
    matchers = tuple(a for a in args if "=" in a)
    rest = [a for a in args if "=" not in a]
    if not matchers or len(rest) < 2 or args[: len(matchers)] != list(matchers):
        return _usage(Verb.SILENCE, "a silence needs field=value matchers, a duration, a reason.")
    try:
        duration = parse_duration(rest[0])
    except ValueError as exc:
        return _usage(Verb.SILENCE, f"{exc}.")
    return TextCommand(Verb.SILENCE, matchers=matchers, duration=duration, text=" ".join(rest[1:]))


def _usage(verb: Verb, problem: str) -> TextCommand:
    return TextCommand(Verb.HELP, problem=f"{problem[0].upper()}{problem[1:]} Try: {USAGE[verb]}")


class TeamsCommands:
    """Runs text commands for one person (``teams:<AAD object id>``) and words the answer."""

    def __init__(self, operations: Operations, console_url: str) -> None:
        self._operations = operations
        self._console_url = console_url

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
        if verb is Verb.SHOW:
            card: Card = await self._operations.card(command.incident)
            return Answer(card=render_card(card))
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
