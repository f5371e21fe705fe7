"""Parsing the SPL subset: the tree it builds, what it tells a validator, and its errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import PermanentError
from detectors.spl.nodes import (
    And,
    BinCommand,
    FieldIn,
    FieldMatch,
    Not,
    Or,
    SearchCommand,
    SortKey,
    StatsCommand,
    Term,
)
from detectors.spl.time import parse_span, resolve_time
from integrations.local import SplError, parse, run


def first_clause(text: str):
    command = parse(text).commands[0]
    assert isinstance(command, SearchCommand)
    return command


# --- the search clause ----------------------------------------------------------------------


def test_terms_are_joined_by_an_implicit_and() -> None:
    assert first_clause("error timeout").expr == And(
        (Term("error", False, 0), Term("timeout", False, 6))
    )


def test_or_binds_tighter_than_and_as_in_splunk() -> None:
    expr = first_clause("a b OR c").expr
    assert expr == And((Term("a", False, 0), Or((Term("b", False, 2), Term("c", False, 7)))))


def test_parentheses_and_not() -> None:
    expr = first_clause("NOT (a OR b) c").expr
    assert expr == And((Not(Or((Term("a", False, 5), Term("b", False, 10)))), Term("c", False, 13)))


def test_lowercase_boolean_words_are_plain_terms() -> None:
    expr = first_clause("a or b").expr
    assert isinstance(expr, And)
    assert [t.text for t in expr.items] == ["a", "or", "b"]  # type: ignore[union-attr]


def test_quoted_phrase_is_one_term() -> None:
    assert first_clause('"connection refused"').expr == Term("connection refused", True, 0)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_field_comparisons(op: str) -> None:
    assert first_clause(f"status{op}500").expr == FieldMatch("status", op, "500", 0)


def test_field_value_may_be_quoted_or_wildcarded() -> None:
    expr = first_clause('msg="disk full" host=web*').expr
    assert expr == And(
        (FieldMatch("msg", "=", "disk full", 0), FieldMatch("host", "=", "web*", 16))
    )


def test_field_in_list() -> None:
    assert first_clause("status IN (500, 503)").expr == FieldIn("status", ("500", "503"), 0)


def test_leading_search_keyword_is_optional() -> None:
    assert first_clause("search error").expr == Term("error", False, 7)
    assert first_clause("| search error").expr == Term("error", False, 9)


def test_inline_time_modifiers_leave_the_expression() -> None:
    clause = first_clause("earliest=-15m error latest=now")
    assert clause.expr == Term("error", False, 14)
    assert (clause.earliest, clause.latest) == ("-15m", "now")


# --- prefilter and what a validator sees ----------------------------------------------------


def test_prefilter_takes_exact_equalities_from_the_top_level_and() -> None:
    pf = parse("index=web sourcetype=access host=web01 source=/var/log/x error").prefilter
    assert (pf.index, pf.sourcetype, pf.host, pf.source) == ("web", "access", "web01", "/var/log/x")


@pytest.mark.parametrize(
    "text",
    ["index=web* error", "index=web OR index=app", "NOT index=web", "index!=web", "host=01"],
)
def test_prefilter_skips_what_sql_equality_cannot_express(text: str) -> None:
    pf = parse(text).prefilter
    assert pf.index is None and pf.host is None


def test_prefilter_collects_substrings_raw_must_hold() -> None:
    pf = parse('index=web (error OR fail*) "Connection refused" NOT debug').prefilter
    assert pf.contains == (("error", "fail"), ("connection",))


def test_prefilter_carries_inline_time_modifiers() -> None:
    pf = parse("earliest=-1h@h latest=-5m error").prefilter
    assert (pf.earliest, pf.latest) == ("-1h@h", "-5m")


def test_window_is_narrowed_by_inline_modifiers_relative_to_latest() -> None:
    latest = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    earliest = latest - timedelta(hours=2)
    start, end = parse("earliest=-1h@h latest=-5m x").window(earliest, latest)
    assert start == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    assert end == datetime(2024, 5, 1, 12, 25, tzinfo=UTC)


def test_window_never_widens_the_query_window() -> None:
    latest = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    earliest = latest - timedelta(minutes=5)
    assert parse("earliest=-1d x").window(earliest, latest) == (earliest, latest)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("error | stats count", {"count"}),
        (
            "error | stats count, sum(bytes), dc(user) by host",
            {"host", "count", "sum(bytes)", "dc(user)"},
        ),
        (
            "error | stats avg(ms) as mean_ms by host | eval slow=mean_ms>500",
            {"host", "mean_ms", "slow"},
        ),
        ("error | table _time host", {"_time", "host"}),
        ("error | fields host", {"host", "_time", "_raw"}),
        ("error | stats count by host | rename host as server", {"server", "count"}),
        ("error | stats count by host | fields - count", {"host"}),
        ("error | stats count by host | table host, nosuch", {"host"}),
        ("error | stats count by host | table h*", {"host"}),
        ("error", None),
        ("error | eval x=1", None),
        ("error | table host*", None),
        ("error | fields - _raw", None),
    ],
)
def test_output_fields(text: str, fields: set[str] | None) -> None:
    assert parse(text).output_fields() == fields


def test_only_stats_makes_a_pipeline_transforming() -> None:
    assert parse("error | stats count").is_transforming
    assert not parse("error | table host").is_transforming
    assert not parse("error | eval x=1 | head 5").is_transforming


# --- commands -------------------------------------------------------------------------------


def test_stats_names_follow_splunk() -> None:
    stats = parse(
        "x | stats count, c, count(host), sum(bytes), p95(ms), avg(ms) as mean by host"
    ).commands[1]
    assert isinstance(stats, StatsCommand)
    assert [a.name for a in stats.aggregations] == [
        "count",
        "c",
        "count(host)",
        "sum(bytes)",
        "p95(ms)",
        "mean",
    ]
    assert stats.by == ("host",)
    assert stats.aggregations[4].percentile == 95


def test_sort_keys_limit_and_direction() -> None:
    sort = parse("x | sort 5 -count, +host, num(code)").commands[1]
    assert sort.keys == (  # type: ignore[union-attr]
        SortKey("count", True),
        SortKey("host", False),
        SortKey("code", False, "num"),
    )
    assert sort.limit == 5  # type: ignore[union-attr]
    assert parse("x | sort host").commands[1].limit == 10_000  # type: ignore[union-attr]
    assert parse("x | sort 0 host").commands[1].limit is None  # type: ignore[union-attr]
    assert parse("x | sort count desc").commands[1].keys == (SortKey("count", True),)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("span", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("2min", 120)]
)
def test_bin_spans(span: str, seconds: float) -> None:
    for command in ("bin", "bucket"):
        binned = parse(f"x | {command} _time span={span}").commands[1]
        assert isinstance(binned, BinCommand)
        assert binned.span == seconds and binned.as_time


def test_command_names_are_case_insensitive() -> None:
    assert isinstance(parse("x | STATS count").commands[1], StatsCommand)


def test_parse_is_cached_by_text() -> None:
    assert parse("index=web | stats count by host") is parse("index=web | stats count by host")


# --- time modifiers -------------------------------------------------------------------------

NOW = datetime(2024, 5, 15, 10, 37, 12, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("now", NOW),
        ("-15m", NOW - timedelta(minutes=15)),
        ("-1h@h", datetime(2024, 5, 15, 9, 0, tzinfo=UTC)),
        ("@d", datetime(2024, 5, 15, tzinfo=UTC)),
        ("-1d@d+8h", datetime(2024, 5, 14, 8, 0, tzinfo=UTC)),
        ("@w1", datetime(2024, 5, 13, tzinfo=UTC)),
        ("@w0", datetime(2024, 5, 12, tzinfo=UTC)),
        ("-1mon@mon", datetime(2024, 4, 1, tzinfo=UTC)),
        ("-2y", NOW.replace(year=2022)),
        ("1700000000", datetime.fromtimestamp(1_700_000_000, UTC)),
        ("05/01/2024:12:00:00", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_time_modifiers(spec: str, expected: datetime) -> None:
    assert resolve_time(spec, NOW) == expected


@pytest.mark.parametrize("spec", ["", "-15", "-15q", "@", "yesterday", "-1h@q"])
def test_bad_time_modifiers(spec: str) -> None:
    with pytest.raises(ValueError):
        resolve_time(spec, NOW)


def test_numeric_bin_span_is_not_a_time_span() -> None:
    assert parse_span("100") == (100, False)


# --- errors ---------------------------------------------------------------------------------


def test_spl_error_is_a_permanent_error_with_a_position() -> None:
    with pytest.raises(SplError) as info:
        parse("index=web | transaction host")
    assert isinstance(info.value, PermanentError)
    assert info.value.position == 12


def test_unsupported_command_names_itself_position_and_the_supported_ones() -> None:
    with pytest.raises(SplError) as info:
        parse("index=web sourcetype=x | transaction host")
    assert str(info.value).startswith(
        "unsupported command 'transaction' at position 25; supported:"
    )
    assert "stats" in str(info.value) and "dedup" in str(info.value)


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty search"),
        ("| stats count", 2, "'stats' cannot start a search"),
        ("| makeresults", 2, "unsupported command 'makeresults'"),
        ("x || stats count", 3, "expected a command name after '|', found '|'"),
        ("x |", 3, "expected a command name"),
        ("status>=", 8, "expected a value after 'status>='"),
        ("(a OR b", 7, "expected ')'"),
        ("a OR", 4, "expected a search term"),
        ("a )", 2, "expected a search term, found ')'"),
        ('a "open', 2, "unterminated quoted string"),
        ("a [search b]", 2, "subsearches"),
        ("earliest=soon x", 0, "invalid time 'soon'"),
        ("a OR earliest=-5m", 5, "not allowed inside OR or NOT"),
        ("x | search earliest=-5m", 11, "not allowed in a later '| search'"),
        ("x | stats", 9, "expected a stats function"),
        ("x | stats median", 10, "'median' needs a field"),
        ("x | stats foo(a)", 10, "unsupported stats function 'foo'"),
        ("x | stats count(eval(a>1))", 16, "eval(...) inside stats is not supported"),
        ("x | stats count by", 18, "expected a field name after 'by'"),
        ("x | eval", 8, "expected a field name to assign"),
        ("x | eval y=", 11, "expected an expression for 'y'"),
        ("x | eval y=1 z=2", 13, "expected an operator, ',' or end of eval"),
        ("x | eval y=nope(1)", 11, "unsupported function 'nope'"),
        ("x | eval y=if(a, 1)", 11, "if() takes 3 arguments, got 2"),
        ('x | eval y=match(a, "(")', 11, "invalid regular expression in match()"),
        ("x | eval y=$", 11, "unexpected character '$'"),
        ("x | where", 9, "expected an expression after 'where'"),
        ("x | where a=1 b", 14, "expected an operator or end of where"),
        ("x | head ten", 9, "expected a number of results"),
        ("x | sort", 8, "expected a field to sort by"),
        ("x | table", 9, "expected a field name after 'table'"),
        ("x | bin _time", 4, "bin needs span="),
        ("x | bin _time span=5q", 14, "invalid span '5q'"),
        ("x | bin _time bins=10", 14, "unsupported bin option 'bins'"),
        ("x | rename a", 12, "expected 'as' after 'a'"),
        ("x | dedup", 4, "dedup needs at least one field"),
        ("x | dedup host consecutive=true", 15, "unsupported dedup option 'consecutive'"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(
    text: str, position: int, fragment: str
) -> None:
    with pytest.raises(SplError) as info:
        parse(text)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert f"at position {position}" in str(info.value)


_PIECES = st.sampled_from(
    [
        *"ab=!<>()\"'|*-+., 0123456789_@%[]$\\",
        "error",
        "OR",
        "AND",
        "NOT",
        "IN",
        "search",
        "stats",
        "count",
        "by",
        "as",
        "eval",
        "where",
        "sort",
        "head",
        "table",
        "bin",
        "bucket",
        "span=",
        "rename",
        "fields",
        "dedup",
        "sum(",
        "if(",
        "like(",
        "match(",
        "earliest=",
        "latest=",
        "-5m",
        "@h",
        "host",
        "_time",
        "1m",
        "desc",
        "transaction",
    ]
)


_ROWS = [
    {"_time": 1_714_564_700.0 + i, "_raw": f"a=1 b=x{i} error host=h{i % 2}", "host": "h"}
    for i in range(5)
]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=30).map("".join)))
def test_any_text_parses_or_raises_spl_error(text: str) -> None:
    try:
        pipeline = parse(text)
        pipeline.output_fields()
        results = run(pipeline, _ROWS, NOW - timedelta(days=365), NOW)
    except SplError as exc:
        assert 0 <= exc.position <= len(text)
        return
    assert all(isinstance(row, dict) for row in results)
