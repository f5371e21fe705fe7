"""The slash command language: what people type and what they are told when it is wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integrations.slack.commands import (
    USAGE,
    Scope,
    SlashRequest,
    UsageError,
    Verb,
    help_text,
    parse,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SlashRequest(Verb.HELP)),
        ("help", SlashRequest(Verb.HELP)),
        ("list", SlashRequest(Verb.LIST)),
        ("LIST acked", SlashRequest(Verb.LIST, scope=Scope.ACKED)),
        ("list all", SlashRequest(Verb.LIST, scope=Scope.ALL)),
        ("list open", SlashRequest(Verb.LIST, scope=Scope.OPEN)),
        ("show INC-12", SlashRequest(Verb.SHOW, 12)),
        ("ack inc-7", SlashRequest(Verb.ACK, 7)),
        ("acknowledge 7", SlashRequest(Verb.ACK, 7)),
        ("unack INC-7", SlashRequest(Verb.UNACK, 7)),
        ("unsuppress INC-3", SlashRequest(Verb.UNSUPPRESS, 3)),
        ("escalate INC-3", SlashRequest(Verb.ESCALATE, 3)),
        ("reanalyze INC-3", SlashRequest(Verb.REANALYSE, 3)),
        (
            "suppress INC-3 1h30m deploy of v2.3  in progress",
            SlashRequest(
                Verb.SUPPRESS,
                3,
                duration=timedelta(hours=1, minutes=30),
                text="deploy of v2.3 in progress",
            ),
        ),
        ("resolve INC-3", SlashRequest(Verb.RESOLVE, 3)),
        ("resolve INC-3 rolled back", SlashRequest(Verb.RESOLVE, 3, text="rolled back")),
        ("reopen INC-3 still failing", SlashRequest(Verb.REOPEN, 3, text="still failing")),
        (
            "silence service=checkout host!=web-* 2h load test",
            SlashRequest(
                Verb.SILENCE,
                duration=timedelta(hours=2),
                text="load test",
                matchers=("service=checkout", "host!=web-*"),
            ),
        ),
        ("rules", SlashRequest(Verb.RULES)),
        ("dance INC-3", SlashRequest(Verb.HELP, unknown="dance")),
    ],
)
def test_parses_what_people_type(text: str, expected: SlashRequest) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ack", "ack needs an incident id such as INC-12"),
        ("ack twelve", "'twelve' is not an incident id"),
        ("ack INC-0", "'INC-0' is not an incident id"),
        ("ack INC-3 now", "ack takes only the incident id (got 'now' after it)"),
        ("suppress INC-3", "suppress needs a duration after INC-3"),
        ("suppress INC-3 soon because", "'soon' is not a duration"),
        ("suppress INC-3 45d too long", "'45d' is out of range"),
        ("suppress INC-3 1h", "suppress needs a reason after the duration"),
        ("list everything", "suppressed, resolved or all (got 'everything')"),
        ("rules now", "rules takes no arguments"),
        ("silence 2h reason", "silence needs at least one field=value matcher"),
        ("silence service= 2h reason", "bad matcher 'service='"),
        ("silence service=x", "silence needs a duration after the matchers"),
        ("silence service=x 2h", "silence needs a reason after the duration"),
    ],
)
def test_mistakes_are_named_with_the_right_form(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text, "/inc")
    message = str(caught.value)
    assert says in message
    verb = text.split()[0]
    assert f"Usage: `/inc {USAGE[Verb(verb)]}`" in message


def test_help_lists_every_subcommand_under_the_configured_name() -> None:
    text = help_text("/oncall")
    assert all(f"`/oncall {usage}`" in text for usage in USAGE.values())
    assert help_text("/oncall", unknown="dance").startswith("I don't know `dance`.")
