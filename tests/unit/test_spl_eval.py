"""Running SPL-subset pipelines over rows: what each command and operator does to results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.local import SplError, parse, run

LATEST = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EARLIEST = LATEST - timedelta(hours=1)
T0 = LATEST.timestamp()


def event(raw: str, ago: float = 60, **fields: object) -> dict:
    row: dict = {"_time": T0 - ago, "_raw": raw, "index": "main", "host": "web01"}
    row.update(fields)
    return row


def spl(text: str, rows: list[dict], **kwargs: object) -> list[dict]:
    return run(parse(text), rows, EARLIEST, LATEST, **kwargs)  # type: ignore[arg-type]


def raws(results: list[dict]) -> list[str]:
    return [r["_raw"] for r in results]


LOGS = [
    event("GET /api/users status=200 bytes=512 user=alice", ago=50),
    event('GET /api/orders status=503 bytes=2048 user=bob msg="upstream timeout"', ago=40),
    event("POST /api/orders status=500 bytes=10 user=alice error=db_down", ago=30),
    event("connection refused by peer 10.0.0.7", ago=20, host="db01"),
    event("Errors: 3 retried", ago=10, host="db01"),
]


# --- terms and phrases ----------------------------------------------------------------------


def test_bare_term_matches_whole_tokens_case_insensitively() -> None:
    assert raws(spl("ERROR", LOGS)) == [LOGS[2]["_raw"]]  # error=db_down; "Errors" is not "error"


def test_trailing_wildcard_extends_a_term() -> None:
    assert raws(spl("error*", LOGS)) == [LOGS[2]["_raw"], LOGS[4]["_raw"]]


def test_leading_and_inner_wildcards() -> None:
    assert raws(spl("*refused", LOGS)) == [LOGS[3]["_raw"]]
    assert raws(spl("up*out", LOGS)) == []  # a term wildcard does not span whitespace
    assert raws(spl("/api/ord*", LOGS)) == [LOGS[1]["_raw"], LOGS[2]["_raw"]]


def test_phrase_matches_words_in_sequence() -> None:
    assert raws(spl('"Connection  Refused"', LOGS)) == [LOGS[3]["_raw"]]
    assert raws(spl('"refused connection"', LOGS)) == []
    assert raws(spl('"upstream * "', LOGS)) == [LOGS[1]["_raw"]]


def test_punctuated_term_matches_as_a_unit() -> None:
    assert raws(spl("10.0.0.7", LOGS)) == [LOGS[3]["_raw"]]
    assert raws(spl("10.0.0", LOGS)) == [LOGS[3]["_raw"]]
    assert spl("0.0.0.7x", LOGS) == []


def test_and_or_not_and_parentheses() -> None:
    assert len(spl("GET status=200", LOGS)) == 1
    assert len(spl("GET OR POST", LOGS)) == 3
    assert len(spl("NOT GET", LOGS)) == 3
    assert len(spl("(GET OR POST) NOT alice", LOGS)) == 1
    assert len(spl("GET AND user=bob", LOGS)) == 1


def test_star_alone_matches_everything() -> None:
    assert len(spl("*", LOGS)) == len(LOGS)


# --- field comparisons ----------------------------------------------------------------------


def test_fields_are_extracted_from_raw_key_value_pairs() -> None:
    assert [r["user"] for r in spl("status>=500", LOGS)] == ["bob", "alice"]


def test_quoted_values_are_extracted_whole() -> None:
    assert spl('msg="upstream timeout"', LOGS)[0]["msg"] == "upstream timeout"


def test_explicit_fields_win_over_extracted_ones() -> None:
    rows = [event("status=200 user=alice", status="404")]
    assert spl("status=404", rows)[0]["status"] == "404"
    assert spl("status=200", rows) == []


def test_numeric_comparison_when_both_sides_are_numbers() -> None:
    rows = [event("bytes=9"), event("bytes=10"), event("bytes=100")]
    assert [r["bytes"] for r in spl("bytes>9", rows)] == ["10", "100"]
    assert [r["bytes"] for r in spl("bytes<=10", rows)] == ["9", "10"]
    assert len(spl("bytes=10.0", rows)) == 1


def test_string_comparison_otherwise() -> None:
    rows = [event("user=alice"), event("user=bob"), event("user=carol")]
    assert [r["user"] for r in spl("user>b", rows)] == ["bob", "carol"]
    assert [r["user"] for r in spl("user<bob", rows)] == ["alice"]


def test_field_values_match_case_insensitively_with_wildcards() -> None:
    assert len(spl("host=WEB01", LOGS)) == 3
    assert len(spl("host=db*", LOGS)) == 2
    assert len(spl("host=*01", LOGS)) == 5
    assert len(spl("user=*", LOGS)) == 3


def test_not_equal_needs_the_field_but_not_equal_does_not() -> None:
    assert [r["user"] for r in spl("user!=alice", LOGS)] == ["bob"]
    assert len(spl("NOT user=alice", LOGS)) == 3  # bob and the two lines without a user


def test_field_in_list() -> None:
    assert [r["status"] for r in spl("status IN (500, 503)", LOGS)] == ["503", "500"]


def test_builtin_fields_are_searchable() -> None:
    rows = [event("a", sourcetype="nginx", source="/var/log/x"), event("b", sourcetype="app")]
    assert raws(spl("sourcetype=nginx source=/var/log/*", rows)) == ["a"]
    assert len(spl("index=main", rows)) == 2
    assert spl("index=other", rows) == []


def test_terms_after_stats_match_any_field_value() -> None:
    results = spl("* | stats count by host | search db01", LOGS)
    assert results == [{"host": "db01", "count": 2}]


# --- time window ----------------------------------------------------------------------------


def test_window_is_earliest_inclusive_latest_exclusive() -> None:
    rows = [
        event("at-earliest", ago=3600),
        event("before", ago=3600.001),
        event("at-latest", ago=0),
        event("inside", ago=1),
    ]
    assert raws(spl("*", rows)) == ["at-earliest", "inside"]


def test_inline_time_modifiers_narrow_the_window() -> None:
    rows = [event("old", ago=1800), event("new", ago=60)]
    assert raws(spl("earliest=-15m *", rows)) == ["new"]
    assert raws(spl("latest=-15m *", rows)) == ["old"]
    assert raws(spl("earliest=-2h *", rows)) == ["old", "new"]  # cannot widen


def test_rows_may_carry_datetime_times() -> None:
    rows = [{"_time": LATEST - timedelta(minutes=1), "_raw": "x"}]
    assert spl("x", rows)[0]["_time"] == T0 - 60


def test_input_rows_are_not_modified() -> None:
    rows = [event("status=500")]
    spl("status=500 | eval x=1 | rename status as code", rows)
    assert rows == [event("status=500")]


# --- where and eval -------------------------------------------------------------------------


def test_where_keeps_rows_whose_expression_is_true() -> None:
    results = spl('* | where status>=500 AND user="alice"', LOGS)
    assert raws(results) == [LOGS[2]["_raw"]]


def test_where_string_equality_is_case_sensitive() -> None:
    assert spl('* | where user="Alice"', LOGS) == []
    assert len(spl('* | where lower(host)="db01"', LOGS)) == 2


def test_where_like_and_match() -> None:
    assert len(spl('* | where like(_raw, "GET%")', LOGS)) == 2
    assert len(spl('* | where _raw LIKE "%orders%"', LOGS)) == 2
    assert len(spl('* | where match(_raw, "\\d+\\.\\d+\\.\\d+\\.\\d+")', LOGS)) == 1


def evaluate(expression: str, **fields: object) -> object:
    row = {"_time": T0 - 1, "_raw": "", **fields}
    return spl(f"* | eval r={expression}", [row])[0].get("r")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 % 0", None),
        ("pow(2, 10)", 1024),
        ("1e308 * 10", None),
        ("-x", -4),
        ("x + 1", 5),
        ('"a" . "b" . 1', "ab1"),
        ('"a" + "b"', "ab"),
        ("x > 3", True),
        ("x = 4", True),
        ("x == 4", True),
        ("x != 4", False),
        ("x <= 3", False),
        ("x >= 4 AND x < 5", True),
        ("x > 9 OR x < 5", True),
        ("NOT x > 9", True),
        ("x > 9 XOR x < 5", True),
        ('if(x > 3, "big", "small")', "big"),
        ('case(x < 2, "low", x < 6, "mid")', "mid"),
        ("round(2.5)", 3),
        ("round(3.14159, 2)", 3.14),
        ("abs(-3)", 3),
        ("coalesce(missing, x)", "4"),
        ('lower("AbC")', "abc"),
        ('upper("AbC")', "ABC"),
        ('len("abcd")', 4),
        ('tonumber("42") + 1', 43),
        ('tonumber("ff", 16)', 255),
        ("tostring(3.0)", "3"),
        ("isnull(missing)", True),
        ("isnotnull(x)", True),
        ('like("abc", "a%")', True),
        ('like("abc", "a_")', False),
        ('match("abc", "^a.c$")', True),
        ('substr("string", 2, 3)', "tri"),
        ('replace("a-b-c", "-", "+")', "a+b+c"),
        ('cidrmatch("10.0.0.0/8", "10.1.2.3")', True),
        ('in(x, "3", "4")', True),
        ("max(1, 7, 3)", 7),
        ("missing + 1", None),
        ("1 / 0", None),
        ('"a" . missing', None),
    ],
)
def test_eval_expressions(expression: str, expected: object) -> None:
    assert evaluate(expression, x="4") == expected


def test_eval_assigns_several_fields_left_to_right() -> None:
    results = spl("status=503 | eval kb=bytes/1024, big=if(kb>1, 1, 0)", LOGS)
    assert (results[0]["kb"], results[0]["big"]) == (2, 1)


def test_eval_null_removes_the_field_from_results() -> None:
    assert "user" not in spl("status=503 | eval user=null()", LOGS)[0]


def test_now_is_the_window_end() -> None:
    assert evaluate("now()") == T0


# --- stats ----------------------------------------------------------------------------------

METRICS = [
    event("m svc=a ms=10 user=u1", ago=50),
    event("m svc=a ms=30 user=u2", ago=40),
    event("m svc=b ms=5 user=u1", ago=30),
    event("m svc=b ms=x user=u1", ago=20),
    event("m user=u3", ago=10),
]


def test_stats_count_by_field_in_group_order() -> None:
    assert spl("m | stats count by svc", METRICS) == [
        {"svc": "a", "count": 2},
        {"svc": "b", "count": 2},
    ]


def test_stats_default_names_and_aliases() -> None:
    results = spl("m | stats count, count(ms), sum(ms), avg(ms) as mean by svc", METRICS)
    assert results[0] == {"svc": "a", "count": 2, "count(ms)": 2, "sum(ms)": 40, "mean": 20.0}
    assert results[1] == {"svc": "b", "count": 2, "count(ms)": 2, "sum(ms)": 5, "mean": 5.0}


def test_stats_min_max_dc_values_range() -> None:
    row = spl("m | stats min(ms), max(ms), range(ms), dc(user), values(user)", METRICS)[0]
    assert row == {
        "min(ms)": 5,
        "max(ms)": 30,
        "range(ms)": 25,
        "dc(user)": 3,
        "values(user)": "u1,u2,u3",
    }


def test_stats_earliest_latest_first_last() -> None:
    row = spl("m | stats earliest(user), latest(user), first(user), last(user)", METRICS)[0]
    assert row == {
        "earliest(user)": "u1",
        "latest(user)": "u3",
        "first(user)": "u1",
        "last(user)": "u3",
    }


def test_stats_percentiles_median_and_stdev() -> None:
    rows = [event(f"v={n}") for n in (1, 2, 3, 4, 5)]
    result = spl("* | stats median(v), perc90(v), p50(v), stdev(v)", rows)[0]
    assert result["median(v)"] == 3
    assert result["perc90(v)"] == pytest.approx(4.6)
    assert result["p50(v)"] == 3
    assert result["stdev(v)"] == pytest.approx(1.5811, abs=1e-4)


def test_stats_by_several_fields_drops_rows_missing_one() -> None:
    results = spl("m | stats count by svc, user", METRICS)
    assert results == [
        {"svc": "a", "user": "u1", "count": 1},
        {"svc": "a", "user": "u2", "count": 1},
        {"svc": "b", "user": "u1", "count": 2},
    ]


def test_stats_over_nothing_still_counts_zero() -> None:
    assert spl("nothing | stats count, dc(user), sum(ms)", METRICS) == [{"count": 0, "dc(user)": 0}]
    assert spl("nothing | stats count by svc", METRICS) == []


def test_stats_results_then_feed_later_commands() -> None:
    results = spl('m | stats count by svc | where count > 1 | eval label=svc."!"', METRICS)
    assert [r["label"] for r in results] == ["a!", "b!"]


def test_fields_do_not_come_back_from_raw_after_stats() -> None:
    assert spl("m | stats count by svc | where isnotnull(ms)", METRICS) == []


# --- sort, head, dedup ----------------------------------------------------------------------


def test_sort_numeric_when_values_are_numbers() -> None:
    rows = [event(f"n={n}") for n in ("10", "9", "100")]
    assert [r["n"] for r in spl("* | sort n", rows)] == ["9", "10", "100"]
    assert [r["n"] for r in spl("* | sort -n", rows)] == ["100", "10", "9"]


def test_sort_lexicographic_for_strings_and_str_mode() -> None:
    rows = [event(f"n={n}") for n in ("b", "B", "a")]
    assert [r["n"] for r in spl("* | sort n", rows)] == ["B", "a", "b"]
    numbers = [event(f"n={n}") for n in ("10", "9")]
    assert [r["n"] for r in spl("* | sort str(n)", numbers)] == ["10", "9"]


def test_sort_puts_nulls_last_and_orders_by_several_keys() -> None:
    rows = [event("k=1 v=b"), event("v=z"), event("k=2 v=a"), event("k=1 v=a")]
    assert [(r.get("k"), r["v"]) for r in spl("* | sort -k, v", rows)] == [
        ("2", "a"),
        ("1", "a"),
        ("1", "b"),
        (None, "z"),
    ]


def test_sort_limit() -> None:
    rows = [event(f"n={n}") for n in range(20)]
    assert [r["n"] for r in spl("* | sort 3 -n", rows)] == ["19", "18", "17"]


def test_head_keeps_the_first_rows_default_ten() -> None:
    rows = [event(f"n={n}") for n in range(20)]
    assert len(spl("* | head", rows)) == 10
    assert [r["n"] for r in spl("* | head 2", rows)] == ["0", "1"]
    assert [r["n"] for r in spl("* | head limit=3", rows)] == ["0", "1", "2"]


def test_dedup_keeps_the_first_of_each_combination() -> None:
    results = spl("m | dedup svc", METRICS)
    assert [(r["svc"], r["ms"]) for r in results] == [("a", "10"), ("b", "5")]
    assert len(spl("m | dedup 2 svc", METRICS)) == 4
    assert len(spl("m | dedup svc keepempty=true", METRICS)) == 3
    assert len(spl("m | dedup svc, user", METRICS)) == 3


# --- table, fields, rename, bin -------------------------------------------------------------


def test_table_keeps_named_fields_in_order() -> None:
    results = spl("m | table user, svc", METRICS[:1])
    assert list(results[0].items()) == [("user", "u1"), ("svc", "a")]


def test_table_wildcards() -> None:
    rows = [event("req_ms=1 req_bytes=2 other=3")]
    assert set(spl("* | table req_*", rows)[0]) == {"req_ms", "req_bytes"}


def test_fields_keeps_named_and_internal_fields() -> None:
    results = spl("m | fields svc", METRICS[:1])
    assert set(results[0]) == {"svc", "_time", "_raw"}


def test_fields_minus_removes_fields() -> None:
    results = spl("m | fields - _raw, user", METRICS[:1])
    assert "_raw" not in results[0] and "user" not in results[0]
    assert results[0]["ms"] == "10"


def test_rename_plain_and_wildcard() -> None:
    results = spl(
        "m | stats avg(ms) as avg_ms, max(ms) as max_ms by svc | rename svc as server, *_ms as *",
        METRICS,
    )
    assert results[0] == {"server": "a", "avg": 20.0, "max": 30}


@pytest.mark.parametrize(
    ("span", "size"), [("30s", 30), ("1m", 60), ("5m", 300), ("1h", 3600), ("1d", 86400)]
)
def test_bin_floors_time_to_the_span(span: str, size: int) -> None:
    t = 1_714_564_799.5  # 2024-05-01 11:59:59.5
    rows = [{"_time": t, "_raw": "x"}]
    binned = run(parse(f"x | bin _time span={span}"), rows, EARLIEST - timedelta(days=2), LATEST)
    assert binned[0]["_time"] == t - (t % size)


def test_bin_then_stats_counts_per_bucket() -> None:
    rows = [event("x", ago=a) for a in (10, 20, 70, 130, 150)]
    results = spl("x | bin _time span=1m | stats count by _time", rows)
    assert [r["count"] for r in results] == [2, 1, 2]
    assert all(r["_time"] % 60 == 0 for r in results)


def test_bin_numeric_field_makes_range_labels_and_alias() -> None:
    rows = [event("ms=120"), event("ms=180"), event("ms=250")]
    results = spl("* | bin ms span=100 as bucket | stats count by bucket", rows)
    assert results == [{"bucket": "100-200", "count": 2}, {"bucket": "200-300", "count": 1}]


# --- results --------------------------------------------------------------------------------


def test_event_results_carry_all_extracted_fields() -> None:
    result = spl("status=503", LOGS)[0]
    assert result["msg"] == "upstream timeout" and result["bytes"] == "2048"


def test_limit_caps_results() -> None:
    assert len(spl("*", LOGS, limit=2)) == 2


def test_run_time_modifier_error_is_an_spl_error() -> None:
    pipeline = parse("latest=+7000y x")  # fine today, past year 9999 from a later "now"
    far = datetime(3500, 1, 1, tzinfo=UTC)
    with pytest.raises(SplError):
        run(pipeline, [], EARLIEST, LATEST, now=far)
