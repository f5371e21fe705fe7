"""The language people type to the bot in chat (the Slack slash command, Teams messages),
parsed by one pure function shared by every chat surface.

::

    /incident list [open|acked|suppressed|resolved|all]
    /incident show INC-12
    /incident ack INC-12                   /incident unack INC-12
    /incident suppress INC-12 1h reason…   /incident unsuppress INC-12
    /incident resolve INC-12 [note…]       /incident reopen INC-12 [reason…]
    /incident escalate INC-12              /incident reanalyse INC-12
    /incident silence field=value [field!=value…] 2h reason…
    /incident rules                        /incident help
    /incident auto-resolve INC-12 [playbook]   (shows the plan; a button confirms it)
    /incident approve RUN-7                /incident cancel-run RUN-7 [reason…]
    /incident killswitch on reason…|off [reason…]|status
    /incident maintenance list             /incident maintenance remove NAME
    /incident maintenance add NAME sun 02:00 4h [Europe/Berlin] field=value… [critical] [reason…]
    /incident maintenance add NAME cron 30 1 * * * 45m [UTC] field=value… [critical] [reason…]

An unknown subcommand answers the help; a malformed one raises :class:`UsageError` whose text
says what is wrong and shows the right form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.domain.durations import parse_duration
from bot.domain.incident import CommandKind, State, parse_human_id

MAX_DURATION = timedelta(days=30)
_RUN_ID = re.compile(r"(?:run-?|#)?([0-9]{1,18})", re.IGNORECASE)
_PLAYBOOK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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
    AUTO_RESOLVE = "auto-resolve"
    APPROVE = "approve"
    CANCEL_RUN = "cancel-run"
    KILLSWITCH = "killswitch"
    MAINTENANCE = "maintenance"
    HELP = "help"


class Switch(StrEnum):
    """What ``killswitch`` asks for."""

    ON = "on"
    OFF = "off"
    STATUS = "status"


class Scope(StrEnum):
    ACTIVE = "active"  # no argument: everything not resolved
    OPEN = "open"
    ACKED = "acked"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"
    ALL = "all"

    @property
    def states(self) -> tuple[str, ...]:
        """The incident states the scope lists."""
        return _SCOPE_STATES[self]


_SCOPE_STATES: dict[Scope, tuple[str, ...]] = {
    Scope.ACTIVE: (State.OPEN.value, State.ACKNOWLEDGED.value, State.SUPPRESSED.value),
    Scope.OPEN: (State.OPEN.value,),
    Scope.ACKED: (State.ACKNOWLEDGED.value,),
    Scope.SUPPRESSED: (State.SUPPRESSED.value,),
    Scope.RESOLVED: (State.RESOLVED.value,),
    Scope.ALL: tuple(s.value for s in State),
}
SCOPE_WORDS = {"acknowledged": Scope.ACKED, **{s.value: s for s in Scope if s is not Scope.ACTIVE}}

#: what each verb asks the core to do
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


ALIASES = {
    "acknowledge": Verb.ACK,
    "unacknowledge": Verb.UNACK,
    "ls": Verb.LIST,
    "reanalyze": Verb.REANALYSE,
    "autoresolve": Verb.AUTO_RESOLVE,
    "auto_resolve": Verb.AUTO_RESOLVE,
    "kill-switch": Verb.KILLSWITCH,
    "cancel_run": Verb.CANCEL_RUN,
}
#: what ``killswitch off`` records when no reason is given
KILLSWITCH_OFF_REASON = "remediation resumed"
USAGE: dict[Verb, str] = {
    Verb.LIST: "list [open|acked|suppressed|resolved|all]",
    Verb.SHOW: "show INC-12",
    Verb.ACK: "ack INC-12",
    Verb.UNACK: "unack INC-12",
    Verb.SUPPRESS: "suppress INC-12 1h reason…",
    Verb.UNSUPPRESS: "unsuppress INC-12",
    Verb.RESOLVE: "resolve INC-12 [note…]",
    Verb.REOPEN: "reopen INC-12 [reason…]",
    Verb.ESCALATE: "escalate INC-12",
    Verb.REANALYSE: "reanalyse INC-12",
    Verb.SILENCE: "silence field=value [field!=value…] 2h reason…",
    Verb.RULES: "rules",
    Verb.AUTO_RESOLVE: "auto-resolve INC-12 [playbook]",
    Verb.APPROVE: "approve RUN-7",
    Verb.CANCEL_RUN: "cancel-run RUN-7 [reason…]",
    Verb.KILLSWITCH: "killswitch on reason…|off [reason…]|status",
    Verb.MAINTENANCE: "maintenance list|remove NAME|add NAME sun 02:00 4h [Europe/Berlin] "
    "field=value… [critical] [reason…] (or: add NAME cron 30 1 * * * 45m …)",
    Verb.HELP: "help",
}
SUMMARY: dict[Verb, str] = {
    Verb.LIST: "incidents not yet resolved (or only open, acknowledged, suppressed, resolved, all)",
    Verb.SHOW: "one incident's card",
    Verb.ACK: "acknowledge: you are on it",
    Verb.UNACK: "hand it back (open again)",
    Verb.SUPPRESS: "hide it for a while (30m, 1h, 4h, 1d … up to 30d); a reason is required",
    Verb.UNSUPPRESS: "end a suppression now",
    Verb.RESOLVE: "mark it resolved, with an optional note",
    Verb.REOPEN: "reopen a resolved incident",
    Verb.ESCALATE: "page the on-call now (when a pager is set up)",
    Verb.REANALYSE: "ask for the root-cause analysis again",
    Verb.SILENCE: "mute matching alerts for a while; answers how many it covers now",
    Verb.RULES: "each detection rule's state",
    Verb.AUTO_RESOLVE: "show the playbook plan and the gate's verdict; a button starts it",
    Verb.APPROVE: "approve a run someone else asked for",
    Verb.CANCEL_RUN: "cancel a run before its next step",
    Verb.KILLSWITCH: "stop (on) or allow (off) every remediation; admins only; status for all",
    Verb.MAINTENANCE: "recurring silences (weekly or cron, in a time zone); critical only if asked",
    Verb.HELP: "this help",
}
_NEEDS_INCIDENT = frozenset(
    {
        Verb.SHOW,
        Verb.ACK,
        Verb.UNACK,
        Verb.SUPPRESS,
        Verb.UNSUPPRESS,
        Verb.RESOLVE,
        Verb.REOPEN,
        Verb.ESCALATE,
        Verb.REANALYSE,
        Verb.AUTO_RESOLVE,
    }
)


class UsageError(ValueError):
    """A malformed command; ``str()`` says what is wrong and how to write it."""


Wrong = Callable[[str], UsageError]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    verb: Verb
    incident: int | None = None
    scope: Scope = Scope.ACTIVE
    duration: timedelta | None = None
    text: str = ""  # reason, note
    matchers: tuple[str, ...] = ()
    unknown: str = ""  # the subcommand that was not understood (help is shown)
    run: int | None = None  # approve, cancel-run
    switch: Switch | None = None  # killswitch
    playbook: str = ""  # auto-resolve: a playbook other than the best match
    window: WindowRequest | None = None  # maintenance


@dataclass(frozen=True, slots=True)
class WindowRequest:
    """``maintenance list|add|remove``; the matchers and reason are the request's own."""

    action: str  # list, add, remove
    name: str = ""
    days: str = ""
    start: str = ""
    cron: str = ""
    duration: str = ""
    timezone: str = "UTC"
    include_critical: bool = False


def parse(text: str, command: str = "/incident") -> ChatRequest:
    """Parse a command (what follows the slash command on Slack, the message on Teams); raise
    :class:`UsageError` when malformed. ``command`` prefixes the usage shown in errors."""
    words = text.split()
    if not words:
        return ChatRequest(Verb.HELP)
    head = words[0].lower()
    verb = ALIASES.get(head) or (Verb(head) if head in Verb.__members__.values() else None)
    if verb is None:
        return ChatRequest(Verb.HELP, unknown=words[0])
    rest = words[1:]

    def wrong(problem: str) -> UsageError:
        usage = f"{command} {USAGE[verb]}".strip()
        return UsageError(f"{problem}. Usage: `{usage}`")

    if verb is Verb.LIST:
        if len(rest) > 1 or (rest and rest[0].lower() not in SCOPE_WORDS):
            raise wrong(
                f"list takes open, acked, suppressed, resolved or all (got {' '.join(rest)!r})"
            )
        return ChatRequest(verb, scope=SCOPE_WORDS[rest[0].lower()] if rest else Scope.ACTIVE)
    if verb in (Verb.RULES, Verb.HELP):
        if rest:
            raise wrong(f"{verb.value} takes no arguments")
        return ChatRequest(verb)
    if verb is Verb.SILENCE:
        return _silence(rest, wrong)
    if verb in (Verb.APPROVE, Verb.CANCEL_RUN):
        return _run_request(verb, rest, wrong)
    if verb is Verb.KILLSWITCH:
        return _killswitch(rest, wrong)
    if verb is Verb.MAINTENANCE:
        return _maintenance(rest, wrong)
    assert verb in _NEEDS_INCIDENT
    if not rest:
        raise wrong(f"{verb.value} needs an incident id such as INC-12")
    incident = parse_human_id(rest[0])
    if incident is None or incident < 1:
        raise wrong(f"{rest[0]!r} is not an incident id; ids look like INC-12")
    rest = rest[1:]
    if verb is Verb.SUPPRESS:
        if not rest:
            raise wrong(f"suppress needs a duration after INC-{incident}, like 1h")
        duration = _duration(rest[0], wrong)
        reason = " ".join(rest[1:])
        if not reason:
            raise wrong("suppress needs a reason after the duration")
        return ChatRequest(verb, incident, duration=duration, text=reason)
    if verb in (Verb.RESOLVE, Verb.REOPEN):
        return ChatRequest(verb, incident, text=" ".join(rest))
    if verb is Verb.AUTO_RESOLVE:
        if len(rest) > 1:
            raise wrong(f"auto-resolve takes one playbook id at most (got {' '.join(rest)!r})")
        if rest and not _PLAYBOOK_ID.fullmatch(rest[0]):
            raise wrong(f"{rest[0]!r} is not a playbook id (letters, digits, '-', '_', '.')")
        return ChatRequest(verb, incident, playbook=rest[0] if rest else "")
    if rest:
        raise wrong(f"{verb.value} takes only the incident id (got {' '.join(rest)!r} after it)")
    return ChatRequest(verb, incident)


def _silence(words: list[str], wrong: Wrong) -> ChatRequest:
    matchers = []
    for word in words:
        if "=" not in word:
            break
        name, _, value = word.partition("!=" if "!=" in word else "=")
        if not name or not value:
            raise wrong(f"bad matcher {word!r}: write field=value or field!=value")
        matchers.append(word)
    rest = words[len(matchers) :]
    if not matchers:
        raise wrong("silence needs at least one field=value matcher, like service=checkout")
    if not rest:
        raise wrong("silence needs a duration after the matchers, like 2h")
    duration = _duration(rest[0], wrong)
    reason = " ".join(rest[1:])
    if not reason:
        raise wrong("silence needs a reason after the duration")
    return ChatRequest(Verb.SILENCE, duration=duration, text=reason, matchers=tuple(matchers))


def parse_run_id(word: str) -> int | None:
    """``RUN-7``, ``run-7``, ``#7`` or ``7`` as 7; None when it is none of these."""
    found = _RUN_ID.fullmatch(word.strip())
    return int(found[1]) if found else None


def _run_request(verb: Verb, words: list[str], wrong: Wrong) -> ChatRequest:
    if not words:
        raise wrong(f"{verb.value} needs a run id such as RUN-7 (the card shows it)")
    run = parse_run_id(words[0])
    if run is None or run < 1:
        raise wrong(f"{words[0]!r} is not a run id; run ids look like RUN-7")
    text = " ".join(words[1:])
    if verb is Verb.APPROVE and text:
        raise wrong(f"approve takes only the run id (got {text!r} after it)")
    return ChatRequest(verb, run=run, text=text)


def _killswitch(words: list[str], wrong: Wrong) -> ChatRequest:
    if not words or words[0].lower() not in Switch.__members__.values():
        got = f" (got {words[0]!r})" if words else ""
        raise wrong(f"killswitch takes on, off or status{got}")
    switch = Switch(words[0].lower())
    reason = " ".join(words[1:])
    if switch is Switch.STATUS and reason:
        raise wrong("killswitch status takes nothing after it")
    if switch is Switch.ON and not reason:
        raise wrong("killswitch on needs a reason after it; it is shown on every card")
    if switch is Switch.OFF and not reason:
        reason = KILLSWITCH_OFF_REASON
    return ChatRequest(Verb.KILLSWITCH, switch=switch, text=reason)


def _maintenance(words: list[str], wrong: Wrong) -> ChatRequest:
    action = words[0].lower() if words else ""
    if action == "list" and len(words) == 1:
        return ChatRequest(Verb.MAINTENANCE, window=WindowRequest("list"))
    if action == "remove" and len(words) == 2:
        return ChatRequest(Verb.MAINTENANCE, window=WindowRequest("remove", words[1]))
    if action != "add":
        raise wrong("maintenance takes list, add NAME … or remove NAME")
    if len(words) < 2:
        raise wrong("maintenance add needs a name, like sunday-patching")
    name, rest = words[1], words[2:]
    days = start = cron = ""
    if rest[:1] == ["cron"]:
        if len(rest) < 6:
            raise wrong("cron needs five fields, like cron 30 1 * * *")
        cron, rest = " ".join(rest[1:6]), rest[6:]
    elif len(rest) >= 2:
        days, start, rest = rest[0], rest[1], rest[2:]
    else:
        raise wrong("maintenance add needs days and a start time (sun 02:00) or cron …")
    if not rest:
        raise wrong("maintenance add needs a duration after the schedule, like 4h")
    duration, rest = rest[0], rest[1:]
    timezone = "UTC"
    if rest and "=" not in rest[0] and ("/" in rest[0] or rest[0].upper() == "UTC"):
        timezone, rest = rest[0], rest[1:]
    matchers = tuple(w for w in _leading_matchers(rest))
    rest = rest[len(matchers) :]
    if not matchers:
        raise wrong("maintenance add needs at least one field=value matcher, like service=db*")
    critical = bool(rest) and rest[0].lower() in ("critical", "include-critical")
    reason = " ".join(rest[1:] if critical else rest)
    window = WindowRequest("add", name, days, start, cron, duration, timezone, critical)
    return ChatRequest(Verb.MAINTENANCE, matchers=matchers, text=reason, window=window)


def _leading_matchers(words: list[str]) -> list[str]:
    out = []
    for word in words:
        if "=" not in word:
            break
        out.append(word)
    return out


def _duration(word: str, wrong: Wrong) -> timedelta:
    try:
        value = parse_duration(word)
    except ValueError:
        raise wrong(f"{word!r} is not a duration; use forms like 30m, 1h, 4h, 1d") from None
    if value <= timedelta(0) or value > MAX_DURATION:
        raise wrong(f"{word!r} is out of range: between 1s and 30d")
    return value
