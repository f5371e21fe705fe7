from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.durations import format_duration, parse_duration

FORMS = "use forms like 30s, 5m, 1h, 1d"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("1m500ms", timedelta(minutes=1, milliseconds=500)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1.5h", timedelta(minutes=90)),
        ("0.25s", timedelta(milliseconds=250)),
        ("90", timedelta(seconds=90)),
        ("2.5", timedelta(seconds=2.5)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        ("  10m  ", timedelta(minutes=10)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_text(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, timedelta(0)),
        (45, timedelta(seconds=45)),
        (1.5, timedelta(seconds=1.5)),
        (86400, timedelta(days=1)),
    ],
)
def test_parse_numbers_as_seconds(value: float, expected: timedelta) -> None:
    assert parse_duration(value) == expected


def test_a_timedelta_passes_through() -> None:
    assert parse_duration(timedelta(minutes=7)) == timedelta(minutes=7)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "m", "5x", "five minutes", "5 minutes", "1h30", "h1", "-5m", "-5", "1e3", "5m!"],
)
def test_bad_text_shows_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(text)
    assert str(refused.value) == f"bad duration {text!r}: {FORMS}"


@pytest.mark.parametrize("value", [-1, -0.5])
def test_negative_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(value)
    assert str(refused.value) == f"bad duration {value!r}: must not be negative"


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_durations(value: bool) -> None:
    with pytest.raises(ValueError, match=r"^bad duration (True|False): use forms like"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["9999999999d", "99999999999999w", float("inf")])
def test_durations_too_long_are_refused_with_value_error(value: str | float) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1), "1d"),
        (timedelta(weeks=2), "14d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(hours=2, seconds=5), "2h5s"),
        (timedelta(seconds=90.9), "1m30s"),
    ],
)
def test_format(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10_000)))
def test_format_then_parse_gives_the_whole_seconds_back(value: timedelta) -> None:
    whole = timedelta(seconds=int(value.total_seconds()))
    assert parse_duration(format_duration(value)) == whole


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=999), st.sampled_from(["w", "d", "h", "m", "s"])
        ),
        min_size=1,
        max_size=5,
    )
)
def test_parts_add_up(parts: list[tuple[int, str]]) -> None:
    sizes = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == timedelta(seconds=sum(n * sizes[u] for n, u in parts))
