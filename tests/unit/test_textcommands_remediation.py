"""The chat grammar's remediation verbs: auto-resolve, approve, cancel-run, killswitch."""

from __future__ import annotations

import pytest

from bot.textcommands import (
    KILLSWITCH_OFF_REASON,
    ChatRequest,
    Switch,
    UsageError,
    Verb,
    parse,
    parse_run_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auto-resolve INC-3", ChatRequest(Verb.AUTO_RESOLVE, 3)),
        (
            "auto-resolve inc-3 restart-web",
            ChatRequest(Verb.AUTO_RESOLVE, 3, playbook="restart-web"),
        ),
        ("autoresolve 3", ChatRequest(Verb.AUTO_RESOLVE, 3)),
        ("approve RUN-7", ChatRequest(Verb.APPROVE, run=7)),
        ("approve #7", ChatRequest(Verb.APPROVE, run=7)),
        ("approve 7", ChatRequest(Verb.APPROVE, run=7)),
        ("cancel-run run-7 wrong host", ChatRequest(Verb.CANCEL_RUN, run=7, text="wrong host")),
        (
            "killswitch on deploy freeze",
            ChatRequest(Verb.KILLSWITCH, switch=Switch.ON, text="deploy freeze"),
        ),
        (
            "kill-switch OFF",
            ChatRequest(Verb.KILLSWITCH, switch=Switch.OFF, text=KILLSWITCH_OFF_REASON),
        ),
        (
            "killswitch off freeze over",
            ChatRequest(Verb.KILLSWITCH, switch=Switch.OFF, text="freeze over"),
        ),
        ("killswitch status", ChatRequest(Verb.KILLSWITCH, switch=Switch.STATUS)),
    ],
)
def test_parses_remediation_commands(text: str, expected: ChatRequest) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("auto-resolve", "auto-resolve needs an incident id such as INC-12"),
        ("auto-resolve INC-3 a b", "auto-resolve takes one playbook id at most (got 'a b')"),
        ("auto-resolve INC-3 rm;-rf", "'rm;-rf' is not a playbook id"),
        ("approve", "approve needs a run id such as RUN-7"),
        ("approve INC-3", "'INC-3' is not a run id; run ids look like RUN-7"),
        ("approve RUN-7 please", "approve takes only the run id (got 'please' after it)"),
        ("killswitch", "killswitch takes on, off or status"),
        ("killswitch maybe", "killswitch takes on, off or status (got 'maybe')"),
        ("killswitch on", "killswitch on needs a reason after it"),
        ("killswitch status now", "killswitch status takes nothing after it"),
    ],
)
def test_mistakes_name_what_is_wrong_and_the_right_form(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert says in str(caught.value)
    assert "Usage: `/incident " in str(caught.value)


def test_run_ids_in_the_forms_people_copy_from_cards() -> None:
    assert [parse_run_id(w) for w in ("RUN-12", "run12", "#12", "12", "RUN-", "x12")] == [
        12,
        12,
        12,
        12,
        None,
        None,
    ]
