"""Text commands typed to the bot in Teams: what each phrasing means, and the help for the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.operations import ACTIVE
from integrations.teams.commands import TextCommand, Verb, clean, parse

ALL = ("open", "acknowledged", "suppressed", "resolved")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", TextCommand(Verb.LIST)),
        ("list acked", TextCommand(Verb.LIST, states=("acknowledged",))),
        ("LIST all", TextCommand(Verb.LIST, states=ALL)),
        ("show INC-12", TextCommand(Verb.SHOW, incident="INC-12")),
        ("ack inc-3", TextCommand(Verb.ACK, incident="INC-3")),
        ("acknowledge 3", TextCommand(Verb.ACK, incident="INC-3")),
        ("unack INC-3", TextCommand(Verb.UNACK, incident="INC-3")),
        ("/unsuppress INC-3", TextCommand(Verb.UNSUPPRESS, incident="INC-3")),
        (
            "suppress INC-3 1h deploy in progress",
            TextCommand(
                Verb.SUPPRESS,
                incident="INC-3",
                duration=timedelta(hours=1),
                text="deploy in progress",
            ),
        ),
        ("resolve INC-3", TextCommand(Verb.RESOLVE, incident="INC-3")),
        (
            "resolve INC-3 rolled back v2",
            TextCommand(Verb.RESOLVE, incident="INC-3", text="rolled back v2"),
        ),
        (
            "reopen INC-3 still failing",
            TextCommand(Verb.REOPEN, incident="INC-3", text="still failing"),
        ),
        (
            "silence service=checkout host!=web-9 2h30m maintenance window",
            TextCommand(
                Verb.SILENCE,
                matchers=("service=checkout", "host!=web-9"),
                duration=timedelta(hours=2, minutes=30),
                text="maintenance window",
            ),
        ),
        ("escalate INC-3", TextCommand(Verb.ESCALATE, incident="INC-3")),
        ("reanalyze INC-3", TextCommand(Verb.REANALYSE, incident="INC-3")),
        ("rules", TextCommand(Verb.RULES)),
        ("help", TextCommand(Verb.HELP)),
        ("", TextCommand(Verb.HELP)),
    ],
)
def test_commands_parse(text: str, expected: TextCommand) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dance", "I don't know 'dance'."),
        # the grammar (and its messages) is the one the Slack command uses: bot.textcommands
        ("list everything", "list takes open, acked, suppressed, resolved or all"),
        ("ack", "ack needs an incident id such as INC-12. Usage: `ack INC-12`"),
        ("ack INC-3 now please", "ack takes only the incident id"),
        ("suppress INC-3 1h", "suppress needs a reason after the duration"),
        ("suppress INC-3 soon because", "'soon' is not a duration"),
        ("silence 2h maintenance", "at least one field=value matcher"),
        ("silence service=checkout forever x", "'forever' is not a duration"),
        ("silence 2h service=checkout maintenance", "at least one field=value matcher"),
    ],
)
def test_anything_else_gets_the_help_with_the_reason(text: str, problem: str) -> None:
    parsed = parse(text)
    assert parsed.verb is Verb.HELP and problem.lower() in parsed.problem.lower()


def test_mentions_and_markup_are_stripped() -> None:
    assert clean("<at>Incident bot</at> ack&nbsp;INC-3") == "ack INC-3"
    assert clean("<p>list&nbsp;<b>open</b></p>") == "list open"
    assert parse("<at>Incident bot</at>  ack   INC-3 ").incident == "INC-3"
    assert parse("list").states == ACTIVE
