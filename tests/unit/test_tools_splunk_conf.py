"""Reading Splunk .conf files the way Splunk does, quirks included."""

from __future__ import annotations

import configparser
import textwrap

import pytest

from detectors.tools.splunk_conf import ConfProblem, parse_conf

CONF = textwrap.dedent(
    """\
    # a comment
    dispatch.ttl = 2p

    [default]
    alert.track = 0

    [Errors [prod]: 5xx = bad]
    search = index=web status>=500 \\
    | stats count by host \\
    | where count > 10
    description = errors # not a comment: part of the value
    alert.track = 1
      indented.key =   spaced value

    [Report]
    search = index=_internal
    search = index=main

    [Errors [prod]: 5xx = bad]
    quantity = 10
    """
)


def test_stanzas_keys_continuations_and_defaults() -> None:
    stanzas, problems = parse_conf(CONF)

    assert problems == []
    errors, report = stanzas
    assert (errors.name, errors.line) == ("Errors [prod]: 5xx = bad", 7)
    assert errors.values == {
        "dispatch.ttl": "2p",
        "alert.track": "1",
        "search": "index=web status>=500 \n| stats count by host \n| where count > 10",
        "description": "errors # not a comment: part of the value",
        "indented.key": "spaced value",
        "quantity": "10",
    }
    assert errors.lines["search"] == 8
    assert errors.lines["quantity"] == 20
    assert errors.lines["dispatch.ttl"] == 2
    assert report.values == {"dispatch.ttl": "2p", "alert.track": "0", "search": "index=main"}


def test_configparser_would_not_read_it() -> None:
    with pytest.raises(configparser.Error):
        configparser.ConfigParser(interpolation=None).read_string(CONF)


def test_lines_that_are_not_settings_are_reported_and_skipped() -> None:
    stanzas, problems = parse_conf("[a]\nsearch = x\njust words\n= no key\n")

    assert [s.values for s in stanzas] == [{"search": "x"}]
    assert problems == [
        ConfProblem(3, "not a 'key = value' setting: 'just words'"),
        ConfProblem(4, "not a 'key = value' setting: '= no key'"),
    ]
    assert str(problems[0]) == "line 3: not a 'key = value' setting: 'just words'"


def test_a_trailing_backslash_on_the_last_line_and_a_bom() -> None:
    (stanza,), _ = parse_conf("\ufeff[a]\r\nsearch = x \\\r\n| head 1 \\")

    assert stanza.values["search"] == "x \n| head 1"
