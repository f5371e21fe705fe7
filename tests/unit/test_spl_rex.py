"""rex, regex and spath in the SPL subset, checked against Splunk's documented behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.local import SplError, parse, run

LATEST = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)
EARLIEST = LATEST - timedelta(hours=1)
T0 = LATEST.timestamp()


def event(raw: str, ago: float = 60, **fields: object) -> dict:
    row: dict = {"_time": T0 - ago, "_raw": raw, "index": "os", "host": "LabSZ"}
    row.setdefault("sourcetype", "plain")
    row.update(fields)
    return row


def spl(text: str, rows: list[dict]) -> list[dict]:
    return run(parse(text), rows, EARLIEST, LATEST)


SSH = [
    event("sshd[1]: Failed password for root from 183.62.140.253 port 36300 ssh2", ago=50),
    event("sshd[2]: Failed password for admin from 183.62.140.253 port 36301 ssh2", ago=40),
    event("sshd[3]: Failed password for root from 112.95.230.3 port 40460 ssh2", ago=30),
    event("sshd[4]: Accepted publickey for fztu from 119.137.62.142 port 49116 ssh2", ago=20),
]


# --- rex ------------------------------------------------------------------------------------


def test_rex_named_groups_become_fields() -> None:
    # the issue's own example: grouping by what rex extracted
    rows = spl('"Failed password" | rex "from (?<src>\\S+) port" | stats count by src', SSH)
    assert rows == [{"src": "112.95.230.3", "count": 1}, {"src": "183.62.140.253", "count": 2}]


def test_rex_is_unanchored_and_takes_python_named_groups_too() -> None:
    rows = spl('* | rex "for (?P<user>\\w+) from" | table user', SSH)
    assert [r["user"] for r in rows] == ["root", "admin", "root", "fztu"]


def test_rex_field_reads_another_field() -> None:
    rows = spl(
        '* | rex "from (?<src>\\S+)" | rex field=src "^(?<net>\\d+\\.\\d+)\\." | table net', SSH
    )
    assert [r["net"] for r in rows] == ["183.62", "183.62", "112.95", "119.137"]


def test_rex_without_a_match_leaves_the_event_as_it_was() -> None:
    rows = spl('* | eval user="kept" | rex "nothing (?<user>\\w+) here" | table user', SSH[:1])
    assert rows == [{"user": "kept"}]
    assert spl('* | rex field=missing "(?<x>.)" | table x', SSH[:1]) == [{}]


def test_rex_max_match() -> None:
    rows = [event("ids: a=1 a=2 a=3")]
    assert spl('* | rex "a=(?<n>\\d)" | table n', rows) == [{"n": "1"}]  # default: the first
    assert spl('* | rex max_match=2 "a=(?<n>\\d)" | table n', rows) == [{"n": "1,2"}]
    assert spl('* | rex max_match=0 "a=(?<n>\\d)" | table n', rows) == [{"n": "1,2,3"}]


def test_rex_wins_over_extracted_fields() -> None:
    rows = [event("user=alice then user bob")]
    assert spl('* | rex "then user (?<user>\\w+)" | table user', rows) == [{"user": "bob"}]


def test_rex_in_a_where_and_a_later_search() -> None:
    rows = spl('* | rex "port (?<port>\\d+)" | where port > 40000 | search port!=49116', SSH)
    assert [r["port"] for r in rows] == ["40460"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('x | rex mode=sed "s/a/b/g"', "rex mode=sed is not supported at position 8"),
        ("x | rex field=_raw", "rex needs a regex in double quotes at position 4"),
        (
            'x | rex "(\\d+)"',
            "the rex regex has no named group, so it extracts nothing at position 8",
        ),
        ('x | rex "(?<a>\\d+"', "invalid regex in 'rex': missing ), unterminated subpattern"),
        ('x | rex max_match=many "(?<a>.)"', "max_match= takes a whole number, not 'many'"),
        ('x | rex offset_field=o "(?<a>.)"', "rex offset_field= is not supported"),
        ('x | rex colour=red "(?<a>.)"', "unsupported rex option 'colour'"),
        ('x | rex "(?<a>.)" "(?<b>.)"', "rex takes one regex"),
        ("x | rex host", "expected a regex in double quotes or field=/max_match="),
    ],
)
def test_rex_errors(query: str, message: str) -> None:
    with pytest.raises(SplError) as caught:
        parse(query)
    assert message in str(caught.value)


def test_rex_sed_error_says_what_to_do_instead() -> None:
    with pytest.raises(SplError) as caught:
        parse('x | rex field=msg mode=sed "s/\\d{4}/xxxx/g"')
    assert "replace(" in caught.value.hint


# --- regex ----------------------------------------------------------------------------------


def test_regex_keeps_matching_events_of_a_field() -> None:
    rows = spl('* | rex "from (?<src>\\S+)" | regex src="^183\\." | stats count', SSH)
    assert rows == [{"count": 2}]


def test_regex_not_equal_keeps_the_others() -> None:
    rows = spl('* | rex "from (?<src>\\S+)" | regex src!="^183\\." | table src', SSH)
    assert [r["src"] for r in rows] == ["112.95.230.3", "119.137.62.142"]


def test_regex_without_a_field_reads_raw() -> None:
    assert len(spl('* | regex "Failed \\w+ for (root|admin)"', SSH)) == 3
    assert len(spl('* | regex _raw!="Failed"', SSH)) == 1


def test_regex_on_a_missing_field() -> None:
    assert spl('* | regex nope="."', SSH) == []
    assert len(spl('* | regex nope!="."', SSH)) == 4  # nothing there to match


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x | regex", "regex needs a regular expression at position 4"),
        ('x | regex src="(a"', "invalid regex in 'regex': missing ), unterminated subpattern"),
        ('x | regex src="a" b', "unexpected text after the regex"),
    ],
)
def test_regex_errors(query: str, message: str) -> None:
    with pytest.raises(SplError, match=message.replace("(", "\\(").replace(")", "\\)")):
        parse(query)


# --- spath ----------------------------------------------------------------------------------

DOC = (
    '{"user":{"name":"ci","roles":["admin","dev"]},"commits":[{"author":{"name":"a"}},'
    '{"author":{"name":"b"}}],"ok":true,"n":3.5,"none":null}'
)


def test_spath_without_a_path_extracts_every_key() -> None:
    (row,) = spl("* | spath | fields - _*", [event(DOC)])
    picked = {k: row[k] for k in row if k not in ("index", "host", "sourcetype")}
    assert picked == {
        "user.name": "ci",
        "user.roles{}": "admin,dev",
        "commits{}.author.name": "a,b",
        "ok": "true",
        "n": "3.5",
        "none": "null",
    }


def test_spath_path_names_the_field_after_the_path() -> None:
    (row,) = spl("* | spath path=user.name | table user.name", [event(DOC)])
    assert row == {"user.name": "ci"}
    (row,) = spl("* | spath user.roles{} | table user.roles{}", [event(DOC)])
    assert row == {"user.roles{}": "admin,dev"}


def test_spath_output_and_array_index_from_zero() -> None:
    query = '* | spath output=second path="commits{1}.author.name" | table second'
    assert spl(query, [event(DOC)]) == [{"second": "b"}]
    assert spl("* | spath output=u path=user | table u", [event(DOC)]) == [
        {"u": '{"name":"ci","roles":["admin","dev"]}'}  # an object comes back as JSON
    ]
    assert spl("* | spath output=x path=no.such | table x", [event(DOC)]) == [{}]


def test_spath_input_reads_another_field() -> None:
    rows = [event('ts=1 payload="{\\"code\\":503}"')]
    assert spl("* | spath input=payload output=code path=code | table code", rows) == [
        {"code": "503"}
    ]


def test_spath_on_text_that_is_not_json_does_nothing() -> None:
    assert spl("* | spath | table _raw", [event("plain text")]) == [{"_raw": "plain text"}]


def test_spath_does_not_overwrite_built_in_fields() -> None:
    (row,) = spl("* | spath | table host level", [event('{"host":"evil","level":"error"}')])
    assert row == {"host": "LabSZ", "level": "error"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x | spath output=u", "spath output= needs a path at position 4"),
        ("x | spath path=a..b", "invalid spath path 'a..b'"),
        ("x | spath mode=xml", "unsupported spath option 'mode'"),
        ("x | spath a b", "unexpected argument to 'spath'"),
    ],
)
def test_spath_errors(query: str, message: str) -> None:
    with pytest.raises(SplError) as caught:
        parse(query)
    assert message in str(caught.value)


def test_output_fields_know_what_rex_and_spath_add() -> None:
    assert parse('x | rex "(?<src>\\S+) (?<port>\\d+)" | table src port').output_fields() == {
        "src",
        "port",
    }
    assert parse('x | rex "(?<src>\\S+)" | stats count by src').output_fields() == {
        "src",
        "count",
    }


def test_the_spath_eval_function() -> None:
    rows = [event(DOC)]
    query = '* | eval first=spath(_raw, "commits{0}.author.name"), gone=spath(_raw, "x.y")'
    assert spl(query + " | table first gone", rows) == [{"first": "a"}]
    assert spl('* | eval v=spath("not json", "a") | table v', rows) == [{}]
