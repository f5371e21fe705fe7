from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.hits import Category, Severity
from bot.domain.incident import (
    MAX_SUPPRESS,
    PEOPLE_COMMANDS,
    Command,
    CommandKind,
    Incident,
    State,
    human_id,
    parse_human_id,
    transition,
)
from bot.errors import Conflict

CREATED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CHANGED = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 22, 9, 45, tzinfo=UTC)  # an earlier suppression's end, before NOW


def incident(state: State = State.OPEN, **changes: Any) -> Incident:
    """INC-7 in ``state``, with the fields that state implies; the last change was by bob."""
    base = Incident(
        id=7,
        group_key="web-5xx|service=checkout",
        rule_id="web-5xx",
        title="5xx on checkout",
        severity=Severity.HIGH,
        category=Category.APPLICATION,
        service="checkout",
        host="web-1",
        owner="web-oncall",
        state=state,
        created_at=CREATED,
        updated_at=CHANGED,
        first_seen=CREATED,
        last_seen=CHANGED,
        hit_count=12,
    )
    implied: dict[str, Any] = {}
    if state is not State.OPEN:
        implied.update(state_changed_by="bob", state_changed_at=CHANGED)
    if state is State.SUPPRESSED:
        implied.update(previous_state=State.OPEN, suppressed_until=UNTIL)
    if state is State.RESOLVED:
        implied.update(resolved_at=CHANGED)
    return replace(base, **{**implied, **changes})


def command(kind: CommandKind, actor: str = "alice", **fields: Any) -> Command:
    defaults: dict[str, Any] = {}
    if kind is CommandKind.SUPPRESS:
        defaults = {"duration": timedelta(hours=1), "reason": "deploy in progress"}
    elif kind is CommandKind.ASSIGN:
        defaults = {"user": "carol"}
    elif kind is CommandKind.COMMENT:
        defaults = {"text": "looking into it"}
    return Command(kind=kind, actor=actor, surface="slack", **{**defaults, **fields})


K = CommandKind
S = State

# Every command kind from every state: the state it leads to, or the words of its refusal.
MATRIX: list[tuple[CommandKind, State, State | str]] = [
    (K.ACKNOWLEDGE, S.OPEN, S.ACKNOWLEDGED),
    (K.ACKNOWLEDGE, S.ACKNOWLEDGED, "is already acknowledged by bob"),
    (K.ACKNOWLEDGE, S.SUPPRESSED, "is suppressed; unsuppress it before acknowledging"),
    (K.ACKNOWLEDGE, S.RESOLVED, "is resolved; reopen it before acknowledging"),
    (K.UNACKNOWLEDGE, S.OPEN, "is open, not acknowledged"),
    (K.UNACKNOWLEDGE, S.ACKNOWLEDGED, S.OPEN),
    (K.UNACKNOWLEDGE, S.SUPPRESSED, "is suppressed, not acknowledged"),
    (K.UNACKNOWLEDGE, S.RESOLVED, "is resolved, not acknowledged"),
    (K.SUPPRESS, S.OPEN, S.SUPPRESSED),
    (K.SUPPRESS, S.ACKNOWLEDGED, S.SUPPRESSED),
    (K.SUPPRESS, S.SUPPRESSED, S.SUPPRESSED),
    (K.SUPPRESS, S.RESOLVED, "is resolved; there is nothing to suppress"),
    (K.UNSUPPRESS, S.OPEN, "is open, not suppressed"),
    (K.UNSUPPRESS, S.ACKNOWLEDGED, "is acknowledged, not suppressed"),
    (K.UNSUPPRESS, S.SUPPRESSED, S.OPEN),
    (K.UNSUPPRESS, S.RESOLVED, "is resolved, not suppressed"),
    (K.RESOLVE, S.OPEN, S.RESOLVED),
    (K.RESOLVE, S.ACKNOWLEDGED, S.RESOLVED),
    (K.RESOLVE, S.SUPPRESSED, S.RESOLVED),
    (K.RESOLVE, S.RESOLVED, "is already resolved by bob"),
    (K.REOPEN, S.OPEN, "is open; only a resolved incident can be reopened"),
    (K.REOPEN, S.ACKNOWLEDGED, "is acknowledged; only a resolved incident can be reopened"),
    (K.REOPEN, S.SUPPRESSED, "is suppressed; only a resolved incident can be reopened"),
    (K.REOPEN, S.RESOLVED, S.OPEN),
    (K.ASSIGN, S.OPEN, S.OPEN),
    (K.ASSIGN, S.ACKNOWLEDGED, S.ACKNOWLEDGED),
    (K.ASSIGN, S.SUPPRESSED, S.SUPPRESSED),
    (K.ASSIGN, S.RESOLVED, S.RESOLVED),
    (K.COMMENT, S.OPEN, S.OPEN),
    (K.COMMENT, S.ACKNOWLEDGED, S.ACKNOWLEDGED),
    (K.COMMENT, S.SUPPRESSED, S.SUPPRESSED),
    (K.COMMENT, S.RESOLVED, S.RESOLVED),
    (K.ESCALATE, S.OPEN, S.OPEN),
    (K.ESCALATE, S.ACKNOWLEDGED, S.ACKNOWLEDGED),
    (K.ESCALATE, S.SUPPRESSED, S.SUPPRESSED),
    (K.ESCALATE, S.RESOLVED, "is resolved; reopen it before escalating"),
    (K.REANALYSE, S.OPEN, S.OPEN),
    (K.REANALYSE, S.ACKNOWLEDGED, S.ACKNOWLEDGED),
    (K.REANALYSE, S.SUPPRESSED, S.SUPPRESSED),
    (K.REANALYSE, S.RESOLVED, S.RESOLVED),
    (K.EXPIRE, S.OPEN, "is open, not suppressed"),
    (K.EXPIRE, S.ACKNOWLEDGED, "is acknowledged, not suppressed"),
    (K.EXPIRE, S.SUPPRESSED, S.OPEN),
    (K.EXPIRE, S.RESOLVED, "is resolved, not suppressed"),
    (K.REFIRE, S.OPEN, "is open; only a resolved incident can be reopened"),
    (K.REFIRE, S.ACKNOWLEDGED, "is acknowledged; only a resolved incident can be reopened"),
    (K.REFIRE, S.SUPPRESSED, "is suppressed; only a resolved incident can be reopened"),
    (K.REFIRE, S.RESOLVED, S.OPEN),
    (K.CLEAR, S.OPEN, S.RESOLVED),
    (K.CLEAR, S.ACKNOWLEDGED, S.RESOLVED),
    (K.CLEAR, S.SUPPRESSED, S.RESOLVED),
    (K.CLEAR, S.RESOLVED, "is already resolved by bob"),
    (K.AUTO_RESOLVE, S.OPEN, S.RESOLVED),
    (K.AUTO_RESOLVE, S.ACKNOWLEDGED, S.RESOLVED),
    (K.AUTO_RESOLVE, S.SUPPRESSED, S.RESOLVED),
    (K.AUTO_RESOLVE, S.RESOLVED, "is already resolved by bob"),
    (K.PAGE, S.OPEN, S.OPEN),
    (K.PAGE, S.ACKNOWLEDGED, S.ACKNOWLEDGED),
    (K.PAGE, S.SUPPRESSED, S.SUPPRESSED),
    (K.PAGE, S.RESOLVED, "is resolved; nobody needs paging"),
]


def test_the_matrix_covers_every_kind_from_every_state() -> None:
    assert {(kind, state) for kind, state, _ in MATRIX} == {(k, s) for k in K for s in S}
    assert len(MATRIX) == len(K) * len(S)


@pytest.mark.parametrize(("kind", "state", "outcome"), MATRIX, ids=lambda v: str(v))
def test_every_command_from_every_state(
    kind: CommandKind, state: State, outcome: State | str
) -> None:
    before = incident(state)
    if isinstance(outcome, State):
        result = transition(before, command(kind), NOW)
        assert result.after.state is outcome
        assert result.before == before
        assert result.after.updated_at == NOW
        assert result.after.id == before.id
        assert result.summary
    else:
        with pytest.raises(Conflict) as refused:
            transition(before, command(kind), NOW)
        assert str(refused.value) == f"INC-7 {outcome}"


# --- acknowledge / unacknowledge ---------------------------------------------------------------


def test_acknowledge_records_who_and_when() -> None:
    result = transition(incident(), command(K.ACKNOWLEDGE, "alice"), NOW)
    assert result.after.state is State.ACKNOWLEDGED
    assert result.after.state_changed_by == "alice"
    assert result.after.state_changed_at == NOW
    assert result.summary == "acknowledged by alice"
    assert result.state_changed


def test_acknowledging_twice_names_who_acknowledged_first() -> None:
    acked = transition(incident(), command(K.ACKNOWLEDGE, "alice"), NOW).after
    with pytest.raises(Conflict, match=r"^INC-7 is already acknowledged by alice$"):
        transition(acked, command(K.ACKNOWLEDGE, "dave"), NOW + timedelta(minutes=1))


def test_unacknowledge_returns_to_open() -> None:
    result = transition(incident(State.ACKNOWLEDGED), command(K.UNACKNOWLEDGE, "alice"), NOW)
    assert result.after.state is State.OPEN
    assert result.after.state_changed_by == "alice"
    assert result.after.state_changed_at == NOW
    assert result.summary == "unacknowledged by alice"


# --- suppress / unsuppress / expire ------------------------------------------------------------


@pytest.mark.parametrize("state", [State.OPEN, State.ACKNOWLEDGED])
def test_suppress_remembers_the_state_it_came_from(state: State) -> None:
    cmd = command(K.SUPPRESS, duration=timedelta(hours=2), reason="maintenance")
    result = transition(incident(state), cmd, NOW)
    assert result.after.state is State.SUPPRESSED
    assert result.after.previous_state is state
    assert result.after.suppressed_until == NOW + timedelta(hours=2)
    assert result.after.state_changed_by == "alice"
    assert result.after.state_changed_at == NOW
    assert result.summary == "suppressed by alice until 2026-11-22 12:00 UTC: maintenance"


def test_suppress_for_exactly_30_days_is_allowed() -> None:
    result = transition(incident(), command(K.SUPPRESS, duration=MAX_SUPPRESS), NOW)
    assert result.after.suppressed_until == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"duration": None}, "cannot be suppressed without a duration (for example 1h)"),
        ({"duration": timedelta(0)}, "cannot be suppressed without a duration (for example 1h)"),
        ({"duration": timedelta(minutes=-5)}, "cannot be suppressed without a duration"),
        ({"duration": timedelta(days=30, seconds=1)}, "cannot be suppressed for more than 30 days"),
        ({"reason": ""}, "cannot be suppressed without a reason"),
        ({"reason": "   "}, "cannot be suppressed without a reason"),
    ],
)
@pytest.mark.parametrize("state", [State.OPEN, State.ACKNOWLEDGED, State.SUPPRESSED])
def test_suppress_refuses_bad_input(state: State, fields: dict[str, Any], reason: str) -> None:
    before = incident(state)
    with pytest.raises(Conflict) as refused:
        transition(before, command(K.SUPPRESS, **fields), NOW)
    assert str(refused.value).startswith(f"INC-7 {reason}")


def test_re_suppressing_keeps_the_original_previous_state_and_moves_the_end() -> None:
    acked = transition(incident(), command(K.ACKNOWLEDGE, "alice"), NOW).after
    first = transition(acked, command(K.SUPPRESS, duration=timedelta(hours=1)), NOW).after
    later = NOW + timedelta(minutes=30)
    again = transition(
        first, command(K.SUPPRESS, "erin", duration=timedelta(hours=3), reason="longer"), later
    )
    assert again.after.state is State.SUPPRESSED
    assert again.after.previous_state is State.ACKNOWLEDGED
    assert again.after.suppressed_until == later + timedelta(hours=3)
    assert again.after.state_changed_by == "erin"
    assert again.summary == "suppressed by erin until 2026-11-22 13:30 UTC: longer"
    assert not again.state_changed


def test_suppression_expires_back_to_acknowledged() -> None:
    acked = transition(incident(), command(K.ACKNOWLEDGE, "alice"), NOW).after
    suppressed = transition(acked, command(K.SUPPRESS, duration=timedelta(hours=1)), NOW).after
    expired = transition(suppressed, command(K.EXPIRE, "bot"), NOW + timedelta(hours=1))
    assert expired.after.state is State.ACKNOWLEDGED
    assert expired.after.previous_state is None
    assert expired.after.suppressed_until is None
    assert expired.after.state_changed_at == NOW + timedelta(hours=1)
    assert expired.summary == "suppression ended; back to acknowledged"


def test_suppression_expires_back_to_open() -> None:
    suppressed = transition(incident(), command(K.SUPPRESS), NOW).after
    expired = transition(suppressed, command(K.EXPIRE, "bot"), NOW + timedelta(hours=2))
    assert expired.after.state is State.OPEN
    assert expired.summary == "suppression ended; back to open"


def test_expire_before_the_suppression_ends_is_refused() -> None:
    suppressed = transition(incident(), command(K.SUPPRESS), NOW).after
    just_before = NOW + timedelta(hours=1) - timedelta(microseconds=1)
    with pytest.raises(Conflict, match=r"^INC-7 is still suppressed$"):
        transition(suppressed, command(K.EXPIRE, "bot"), just_before)


def test_unsuppress_goes_back_early_and_names_the_person() -> None:
    acked = transition(incident(), command(K.ACKNOWLEDGE, "alice"), NOW).after
    suppressed = transition(acked, command(K.SUPPRESS, duration=timedelta(hours=1)), NOW).after
    back = transition(suppressed, command(K.UNSUPPRESS, "dave"), NOW + timedelta(minutes=5))
    assert back.after.state is State.ACKNOWLEDGED
    assert back.after.state_changed_by == "dave"
    assert back.after.previous_state is None
    assert back.after.suppressed_until is None
    assert back.summary == "unsuppressed by dave; back to acknowledged"


# --- resolve / clear / reopen / refire ---------------------------------------------------------


@pytest.mark.parametrize("state", [State.OPEN, State.ACKNOWLEDGED, State.SUPPRESSED])
def test_resolve_records_when_and_clears_the_suppression(state: State) -> None:
    result = transition(incident(state), command(K.RESOLVE, "alice", note="rolled back"), NOW)
    assert result.after.state is State.RESOLVED
    assert result.after.resolved_at == NOW
    assert result.after.state_changed_by == "alice"
    assert result.after.state_changed_at == NOW
    assert result.after.suppressed_until is None
    assert result.after.previous_state is None
    assert result.summary == "resolved by alice: rolled back"
    assert not result.after.is_active


def test_resolve_without_a_note() -> None:
    assert transition(incident(), command(K.RESOLVE, "alice"), NOW).summary == "resolved by alice"


def test_clear_resolves_with_the_condition_cleared() -> None:
    result = transition(incident(State.ACKNOWLEDGED), command(K.CLEAR, "bot"), NOW)
    assert result.after.state is State.RESOLVED
    assert result.after.resolved_at == NOW
    assert result.summary == "condition cleared; resolved"


def test_reopen_forgets_the_resolution() -> None:
    result = transition(incident(State.RESOLVED), command(K.REOPEN, "alice", reason="again"), NOW)
    assert result.after.state is State.OPEN
    assert result.after.resolved_at is None
    assert result.after.state_changed_by == "alice"
    assert result.after.state_changed_at == NOW
    assert result.summary == "reopened by alice: again"
    assert result.after.is_active


def test_reopen_without_a_reason() -> None:
    result = transition(incident(State.RESOLVED), command(K.REOPEN, "alice"), NOW)
    assert result.summary == "reopened by alice"


def test_refire_reopens_a_resolved_incident() -> None:
    result = transition(incident(State.RESOLVED), command(K.REFIRE, "bot"), NOW)
    assert result.after.state is State.OPEN
    assert result.after.resolved_at is None
    assert result.summary == "reopened: the alert fired again within the flap window"


# --- assign / comment --------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(State))
def test_assign_sets_the_assignee_without_touching_the_state(state: State) -> None:
    before = incident(state)
    result = transition(before, command(K.ASSIGN, "alice", user="  carol "), NOW)
    assert result.after.assignee == "carol"
    assert result.after.state is state
    assert result.after.state_changed_by == before.state_changed_by
    assert result.after.state_changed_at == before.state_changed_at
    assert result.after.updated_at == NOW
    assert result.summary == "assigned to carol by alice"
    assert not result.state_changed


@pytest.mark.parametrize("user", ["", "   "])
def test_assign_refuses_an_empty_user(user: str) -> None:
    with pytest.raises(Conflict, match=r"^INC-7 cannot be assigned without a user$"):
        transition(incident(), command(K.ASSIGN, user=user), NOW)


@pytest.mark.parametrize("state", list(State))
def test_comment_adds_a_line_without_touching_the_state(state: State) -> None:
    before = incident(state)
    result = transition(before, command(K.COMMENT, "alice", text=" checking the db \n"), NOW)
    assert result.after == replace(before, updated_at=NOW)
    assert result.summary == "alice: checking the db"


@pytest.mark.parametrize("text", ["", " \n\t"])
def test_comment_refuses_empty_text(text: str) -> None:
    with pytest.raises(Conflict, match=r"^INC-7 cannot take an empty comment$"):
        transition(incident(), command(K.COMMENT, text=text), NOW)


def test_people_commands_exclude_system_events() -> None:
    system = {K.EXPIRE, K.REFIRE, K.CLEAR, K.AUTO_RESOLVE, K.PAGE}
    assert system.isdisjoint(PEOPLE_COMMANDS)
    assert PEOPLE_COMMANDS | system == set(K)


def test_a_refusal_names_the_incident_by_its_own_number() -> None:
    with pytest.raises(Conflict, match=r"^INC-4021 is open, not acknowledged$"):
        transition(incident(id=4021), command(K.UNACKNOWLEDGE), NOW)


# --- any sequence of commands ------------------------------------------------------------------

durations = st.one_of(
    st.none(),
    st.timedeltas(min_value=timedelta(hours=-1), max_value=timedelta(days=31)),
)
commands = st.builds(
    Command,
    kind=st.sampled_from(list(CommandKind)),
    actor=st.sampled_from(["alice", "bob", "bot"]),
    surface=st.just("slack"),
    duration=durations,
    reason=st.sampled_from(["", "  ", "deploy"]),
    note=st.sampled_from(["", "fixed"]),
    user=st.sampled_from(["", " ", "carol"]),
    text=st.sampled_from(["", "\n", "hello"]),
)
steps = st.lists(
    st.tuples(commands, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))),
    max_size=40,
)


@given(steps)
def test_any_sequence_keeps_the_incident_consistent(
    sequence: list[tuple[Command, timedelta]],
) -> None:
    current = incident()
    now = NOW
    for cmd, elapsed in sequence:
        now += elapsed
        try:
            result = transition(current, cmd, now)
        except Conflict as refused:
            assert str(refused).startswith("INC-7 ")
            continue
        assert result.before is current
        current = result.after
        assert current.state in set(State)
        assert (current.resolved_at is not None) == (current.state is State.RESOLVED)
        assert (current.suppressed_until is not None) == (current.state is State.SUPPRESSED)
        if current.state is State.SUPPRESSED:
            assert current.previous_state in (State.OPEN, State.ACKNOWLEDGED)
        else:
            assert current.previous_state is None
        assert current.updated_at == now
        if result.state_changed:
            assert current.state_changed_at == now
            assert current.state_changed_by == cmd.actor
        if cmd.kind is CommandKind.SUPPRESS:
            assert cmd.duration is not None
            assert timedelta(0) < cmd.duration <= MAX_SUPPRESS
            assert current.suppressed_until == now + cmd.duration


# --- ids ---------------------------------------------------------------------------------------


def test_human_id() -> None:
    assert human_id(12) == "INC-12"
    assert incident(id=305).human_id == "INC-305"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("INC-12", 12),
        ("inc-12", 12),
        ("Inc-12", 12),
        ("12", 12),
        ("  INC-12\n", 12),
        ("INC-007", 7),
        ("INC-", None),
        ("", None),
        ("INC-12a", None),
        ("INC-1.5", None),
        ("INC--3", None),
        ("-3", None),
        ("INC 12", None),
        ("INC-INC-12", None),
        ("twelve", None),
        ("INC-2147483647", 2147483647),
        ("INC-2147483648", None),  # past any id the database can hold
        ("INC-99999999999999999999", None),
    ],
)
def test_parse_human_id(text: str, number: int | None) -> None:
    assert parse_human_id(text) == number


@given(st.integers(min_value=0, max_value=2**31 - 1))  # every id the database can hold
def test_parse_human_id_reads_back_human_id(number: int) -> None:
    assert parse_human_id(human_id(number)) == number
    assert parse_human_id(human_id(number).lower()) == number


@pytest.mark.parametrize("text", ["INC-²", "³", "INC-1²"])
def test_parse_human_id_answers_none_for_superscript_digits(text: str) -> None:
    assert parse_human_id(text) is None


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=12))
def test_parse_human_id_accepts_only_a_number_with_an_optional_prefix(text: str) -> None:
    shape = re.fullmatch(r"(?:INC-)?([0-9]+)", text.strip(), re.IGNORECASE)
    assert parse_human_id(text) == (int(shape.group(1)) if shape else None)
