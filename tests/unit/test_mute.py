from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import PermanentError
from bot.pipeline.mute import Matcher, Silence, muting_silence, parse_matchers

START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
LABELS = {"service": "checkout", "host": "web-12", "severity": "high", "env": "prod"}


def silence(*matchers: str, id: int = 1, starts: datetime = START, ends: datetime = END) -> Silence:
    return Silence(
        id=id,
        matchers=parse_matchers(matchers),
        starts_at=starts,
        ends_at=ends,
        reason="maintenance",
        created_by="console:alice",
    )


def test_parse_equal_and_not_equal() -> None:
    assert parse_matchers(["service=checkout", "host!=web-*"]) == (
        Matcher("service", "checkout"),
        Matcher("host", "web-*", negate=True),
    )


def test_parse_trims_spaces() -> None:
    assert parse_matchers([" service = checkout "]) == (Matcher("service", "checkout"),)
    assert parse_matchers(["host != web-1"]) == (Matcher("host", "web-1", negate=True),)


def test_matchers_print_as_written() -> None:
    assert [str(m) for m in parse_matchers(["service=checkout", "host!=web-*"])] == [
        "service=checkout",
        "host!=web-*",
    ]


@pytest.mark.parametrize("text", ["service", "=checkout", "service=", "!=web-1", "host!=", " = "])
def test_bad_matcher_says_how_to_write_one(text: str) -> None:
    with pytest.raises(PermanentError) as refused:
        parse_matchers([text])
    assert str(refused.value) == f"bad matcher {text!r}: use field=value or field!=value"


def test_bad_matcher_among_good_ones_is_named() -> None:
    with pytest.raises(PermanentError, match=r"^bad matcher 'oops'"):
        parse_matchers(["service=checkout", "oops"])


def test_a_silence_needs_a_matcher() -> None:
    with pytest.raises(PermanentError) as refused:
        parse_matchers([])
    assert str(refused.value) == (
        "a silence needs at least one matcher, for example service=checkout"
    )


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("service=checkout", True),
        ("service=catalog", False),
        ("service!=catalog", True),
        ("service!=checkout", False),
        ("host=web-*", True),
        ("host=web-?2", True),
        ("host=web-1*", True),
        ("host=web-2*", False),
        ("host=*", True),
        ("host!=web-*", False),
        ("host=web", False),
        ("service=CHECKOUT", True),
        ("service=Check*", True),
        ("service!=CHECKOUT", False),
        ("team=payments", False),
        ("team!=payments", True),
        ("team=*", True),
    ],
)
def test_matcher_against_labels(text: str, matches: bool) -> None:
    (matcher,) = parse_matchers([text])
    assert matcher.matches(LABELS) is matches


def test_label_values_match_regardless_of_case() -> None:
    (matcher,) = parse_matchers(["host=web-*"])
    assert matcher.matches({"host": "WEB-7"})


def test_label_names_are_exact() -> None:
    (matcher,) = parse_matchers(["Service=checkout"])
    assert not matcher.matches(LABELS)


def test_a_silence_needs_every_matcher_to_match() -> None:
    assert silence("service=checkout", "env=prod").matches(LABELS)
    assert not silence("service=checkout", "env=staging").matches(LABELS)
    assert not silence("service=checkout", "host!=web-*").matches(LABELS)


def test_active_window_includes_its_start_and_excludes_its_end() -> None:
    muted = silence("service=checkout")
    assert not muted.active(START - timedelta(microseconds=1))
    assert muted.active(START)
    assert muted.active(END - timedelta(microseconds=1))
    assert not muted.active(END)


def test_muting_silence_only_while_active() -> None:
    muted = silence("service=checkout")
    assert muting_silence([muted], LABELS, START) is muted
    assert muting_silence([muted], LABELS, START - timedelta(seconds=1)) is None
    assert muting_silence([muted], LABELS, END) is None


def test_muting_silence_skips_silences_that_do_not_match() -> None:
    other = silence("service=catalog", id=1)
    ours = silence("host=web-1*", id=2)
    assert muting_silence([other, ours], LABELS, START) is ours
    assert muting_silence([other], LABELS, START) is None


def test_first_matching_silence_wins() -> None:
    expired = silence("service=checkout", id=1, ends=START)
    first = silence("service=*", id=2)
    second = silence("service=checkout", id=3)
    found = muting_silence([expired, first, second], LABELS, START + timedelta(minutes=1))
    assert found is not None
    assert found.id == 2
    found = muting_silence([second, first], LABELS, START + timedelta(minutes=1))
    assert found is not None
    assert found.id == 3


def test_no_silences_mute_nothing() -> None:
    assert muting_silence([], LABELS, START) is None
