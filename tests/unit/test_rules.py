from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.hits import Category, Severity
from detectors.rules import Problem, RuleFileError, load_rules, validate_paths
from detectors.types.threshold import Op, ThresholdRule

GOOD = """\
id: {id}
title: Errors on {{service}}
query: index=app level=ERROR
type: threshold
group_by: [service]
threshold: {{op: ">=", value: 5}}
severity: medium
category: application
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(*paths: Path) -> list[str]:
    return [str(problem) for problem in validate_paths(list(paths), include_shipped=False)]


def test_a_rules_list_loads_with_defaults_and_source_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "web.yaml",
        """\
        rules:
          - id: web-5xx
            title: "5xx on {service}"
            description: Upstream errors.
            query: index=web status>=500
            type: threshold
            interval: 30s
            window: 1h30m
            query_delay: 15
            group_by: [service, host]
            threshold: {op: ">=", value: 20}
            severity: high
            category: application
            owner: web-oncall
            runbook: https://runbooks.example/web-5xx
            realert: 10m
            resolve_after: 3

          - id: cpu
            title: "High CPU on {host}"
            query: index=metrics metric=cpu_pct | stats max(value) as max_cpu by host
            type: threshold
            schedule: "*/5 * * * *"
            group_by: [host]
            threshold: {field: max_cpu, op: ">", value: 90.5}
            severity: critical
            category: infrastructure
            enabled: false
        """,
    )

    web, cpu = load_rules([path], include_shipped=False)

    assert isinstance(web, ThresholdRule)
    assert web.id == "web-5xx"
    assert web.interval == timedelta(seconds=30)
    assert web.schedule is None
    assert web.window == timedelta(hours=1, minutes=30)
    assert web.query_delay == timedelta(seconds=15)
    assert web.max_catchup == timedelta(hours=1)
    assert web.realert == timedelta(minutes=10)
    assert web.group_by == ("service", "host")
    assert web.threshold.field is None
    assert web.threshold.op is Op.GE
    assert web.threshold.value == 20
    assert web.severity is Severity.HIGH
    assert web.category is Category.APPLICATION
    assert web.runbook == "https://runbooks.example/web-5xx"
    assert web.resolve_after == 3
    assert (web.max_results, web.evidence_lines, web.enabled, web.service) == (10_000, 20, True, "")
    assert (web.source_file, web.source_line) == (str(path), 2)

    assert cpu.interval is None
    assert cpu.schedule == "*/5 * * * *"
    assert cpu.window == timedelta(minutes=5)
    assert cpu.realert == timedelta(0)
    assert cpu.enabled is False
    assert cpu.threshold.field == "max_cpu"
    assert cpu.source_line == 19


def test_interval_defaults_to_a_minute(tmp_path: Path) -> None:
    (rule,) = load_rules([write(tmp_path, "a.yaml", GOOD.format(id="a"))], include_shipped=False)

    assert rule.interval == timedelta(seconds=60)
    assert rule.resolve_after is None


def test_every_file_shape_loads(tmp_path: Path) -> None:
    single = write(tmp_path, "single.yaml", GOOD.format(id="single"))
    listed = write(
        tmp_path,
        "listed.yml",
        "- "
        + GOOD.format(id="l1").replace("\n", "\n  ")
        + "\n- "
        + GOOD.format(id="l2").replace("\n", "\n  "),
    )
    documents = write(
        tmp_path, "docs.yaml", "---\n" + GOOD.format(id="d1") + "---\n" + GOOD.format(id="d2")
    )
    write(tmp_path, "notes.txt", "not a rule file")

    by_file = load_rules([single, listed, documents], include_shipped=False)
    by_folder = load_rules([tmp_path], include_shipped=False)

    assert [r.id for r in by_file] == ["single", "l1", "l2", "d1", "d2"]
    assert sorted(r.id for r in by_folder) == ["d1", "d2", "l1", "l2", "single"]
    assert {r.id: r.source_line for r in by_file}["d2"] == 11


def test_folders_are_searched_recursively_and_once(tmp_path: Path) -> None:
    write(tmp_path, "team/nested/a.yaml", GOOD.format(id="a"))

    rules = load_rules([tmp_path, tmp_path / "team"], include_shipped=False)

    assert [r.id for r in rules] == ["a"]


def test_yaml_syntax_error_points_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "id: a\ntitle: [unclosed\nquery: x\n")

    assert problems(path) == [
        f"{path}:3: invalid YAML: expected ',' or ']', but got ':'"
        " (while parsing a flow sequence started at line 2)"
    ]


def test_unknown_keys_suggest_the_close_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo.yaml",
        """\
        id: typo
        title: Typo
        query: index=app
        type: threshold
        treshold: {op: ">=", value: 1}
        severity: low
        category: application
        colour: blue
        """,
    )

    assert problems(path) == [
        f"{path}:1: missing required key 'threshold'",
        f"{path}:5: unknown key 'treshold' (did you mean 'threshold'?)",
        f"{path}:8: unknown key 'colour'",
    ]


def test_unknown_nested_key_and_source_fields_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nested.yaml",
        GOOD.format(id="nested").replace('op: ">="', 'opp: ">="') + "source_line: 7\n",
    )

    assert problems(path) == [
        f"{path}:6: missing required key 'threshold.op'",
        f"{path}:6: unknown key 'threshold.opp' (did you mean 'threshold.op'?)",
        f"{path}:9: unknown key 'source_line'",
    ]


def test_missing_required_keys_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", "rules:\n  - description: nothing else\n")

    assert problems(path) == [
        f"{path}:2: missing required key 'id'",
        f"{path}:2: missing required key 'title'",
        f"{path}:2: missing required key 'query'",
        f"{path}:2: missing required key 'type'",
        f"{path}:2: missing required key 'severity'",
        f"{path}:2: missing required key 'category'",
    ]


def test_wrong_types_and_values_name_the_key_and_the_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "values.yaml",
        """\
        id: High CPU
        title: ""
        query: index=metrics
        type: threshold
        threshold: {op: "=>", value: lots}
        severity: urgent
        category: hardware
        group_by: host
        max_results: 0
        enabled: maybe
        """,
    )

    assert problems(path) == [
        f"{path}:1: id: 'High CPU' is not a slug: use lowercase letters, digits, '-' and '_'",
        f"{path}:2: title: must not be empty",
        f"{path}:5: threshold.op: input should be '>', '>=', '<', '<=', '==' or '!=' (got '=>')",
        f"{path}:5: threshold.value: input should be a valid number, unable to parse string as"
        " a number (got 'lots')",
        f"{path}:6: severity: input should be 'critical', 'high', 'medium', 'low' or 'info'"
        " (got 'urgent')",
        f"{path}:7: category: input should be 'network', 'database', 'application', 'security',"
        " 'infrastructure' or 'user_access' (got 'hardware')",
        f"{path}:8: group_by: input should be a valid tuple (got 'host')",
        f"{path}:9: max_results: input should be greater than or equal to 1 (got 0)",
        f"{path}:10: enabled: input should be a valid boolean, unable to interpret input"
        " (got 'maybe')",
    ]


def test_unknown_rule_type_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "type.yaml", GOOD.format(id="t").replace("threshold\n", "spikey\n"))
    known = (
        "anomaly, cardinality, change, correlation, flatline, forecast, frequency, new_term, "
        "spike, threshold"
    )
    assert problems(path) == [f"{path}:4: type: unknown rule type 'spikey' (known: {known})"]


def test_a_block_of_another_type_in_a_known_type_is_reported(tmp_path: Path) -> None:
    text = GOOD.format(id="t") + "spike: {ratio: 3}\n"
    path = write(tmp_path, "stray.yaml", text)
    found = problems(path)
    assert len(found) == 1 and "unknown key 'spike'" in found[0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("window: 5 minutes", "window: bad duration '5 minutes': use forms like 30s, 5m, 1h, 1d"),
        ("interval: 1y", "interval: bad duration '1y': use forms like 30s, 5m, 1h, 1d"),
        ("realert: -5m", "realert: bad duration '-5m': use forms like 30s, 5m, 1h, 1d"),
        ("query_delay: [1]", "query_delay: bad duration [1]: use forms like 30s, 5m, 1h, 1d"),
        ("max_catchup: -5", "max_catchup: bad duration -5: must not be negative"),
        ("interval: 0s", "interval: must be at least 1s"),
        ("window: 0", "window: must be at least 1s"),
    ],
)
def test_bad_durations(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "d.yaml", GOOD.format(id="d") + line + "\n")

    assert problems(path) == [f"{path}:9: {message}"]


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30s", 0.5),
        ("5m", 5),
        ("1h", 60),
        ("1d", 1440),
        ("1h30m", 90),
        ("90", 1.5),
        ("2h5m30s", 125.5),
    ],
)
def test_durations_people_write(tmp_path: Path, text: str, minutes: float) -> None:
    path = write(tmp_path, "d.yaml", GOOD.format(id="d") + f"window: {text}\n")

    (rule,) = load_rules([path], include_shipped=False)

    assert rule.window == timedelta(minutes=minutes)


def test_bad_cron_and_interval_with_schedule(tmp_path: Path) -> None:
    bad_cron = write(tmp_path, "cron.yaml", GOOD.format(id="c") + 'schedule: "61 * * * *"\n')
    short = write(tmp_path, "short.yaml", GOOD.format(id="s") + 'schedule: "* * *"\n')
    both = write(tmp_path, "both.yaml", GOOD.format(id="b") + "interval: 1m\nschedule: '@hourly'\n")

    assert problems(bad_cron, short, both) == [
        f"{bad_cron}:9: schedule: bad cron expression '61 * * * *': Error validating expression"
        " '61': the last value (61) is higher than the maximum value (59)",
        f"{short}:9: schedule: bad cron expression '* * *': Wrong number of fields; got 3,"
        " expected 5",
        f"{both}:10: schedule: 'interval' and 'schedule' are both set: use one of them",
    ]


def test_duplicate_ids_name_the_first_definition(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD.format(id="same"))
    second = write(tmp_path, "b.yaml", "# the same again\n" + GOOD.format(id="same"))
    again = write(tmp_path, "c.yaml", f"- {GOOD.format(id='other')}".replace("\n", "\n  "))
    write(tmp_path, "d.yaml", f"- {GOOD.format(id='other')}".replace("\n", "\n  "))

    assert problems(first, second, again, tmp_path / "d.yaml") == [
        f"{second}:2: duplicate id 'same' (first defined at {first}:1)",
        f"{tmp_path / 'd.yaml'}:1: duplicate id 'other' (first defined at {again}:1)",
    ]
    with pytest.raises(RuleFileError) as raised:
        load_rules([tmp_path], include_shipped=False)
    assert len(raised.value.problems) == 2


def test_spl_the_local_engine_cannot_parse_points_at_the_query(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "spl.yaml",
        GOOD.format(id="spl").replace(
            "query: index=app level=ERROR", "query: index=app | stats count by"
        ),
    )
    other = write(
        tmp_path,
        "other.yaml",
        GOOD.format(id="other").replace("query: index=app level=ERROR", "query: index=app | foo x"),
    )

    assert problems(path, other) == [
        f"{path}:3: query: expected a field name after 'by', found end of query at position 26",
        f"{other}:3: query: unsupported command 'foo' at position 12; supported: search, where,"
        " eval, stats, sort, head, table, bin, bucket, rename, fields, dedup, rex, regex, spath,"
        " eventstats, streamstats, top, rare",
    ]


def test_full_spl_for_splunk_loads_when_local_spl_is_off(tmp_path: Path) -> None:
    splunk = GOOD.format(id="splunk").replace(
        "query: index=app level=ERROR",
        "query: index=app level=ERROR | transaction user maxspan=5m | top user",
    )
    path = write(tmp_path, "splunk.yaml", splunk)

    assert len(problems(path)) == 1
    (rule,) = load_rules([path], include_shipped=False, local_spl=False)
    assert rule.query.endswith("| top user")  # transaction: Splunk only
    assert validate_paths([path], include_shipped=False, local_spl=False) == []


def test_other_problems_are_still_reported_when_local_spl_is_off(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "splunk.yaml",
        GOOD.format(id="splunk").replace(
            "query: index=app level=ERROR", "query: index=app | transaction host"
        )
        + "window: soon\n",
    )

    assert [str(p) for p in validate_paths([path], include_shipped=False, local_spl=False)] == [
        f"{path}:9: window: bad duration 'soon': use forms like 30s, 5m, 1h, 1d"
    ]


def test_group_by_is_still_checked_when_the_local_engine_parses_the_query(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cpu.yaml",
        """\
        id: cpu
        title: High CPU on {host}
        query: index=metrics | stats max(value) as max_cpu by server
        type: threshold
        group_by: [host]
        threshold: {op: ">", value: 0}
        severity: high
        category: infrastructure
        """,
    )

    assert [str(p) for p in validate_paths([path], include_shipped=False, local_spl=False)] == [
        f"{path}:5: group_by: field 'host' is not in the query's output (it has: max_cpu, server)"
    ]


def test_group_by_and_threshold_fields_must_be_in_the_query_output(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fields.yaml",
        """\
        id: cpu
        title: High CPU on {host}
        query: index=metrics | stats max(value) as max_cpu by host | rename host as server
        type: threshold
        group_by:
          - server
          - host
        threshold: {field: avg_cpu, op: ">", value: 90}
        severity: high
        category: infrastructure
        """,
    )

    assert problems(path) == [
        f"{path}:7: group_by: field 'host' is not in the query's output (it has: max_cpu, server)",
        f"{path}:8: threshold.field: field 'avg_cpu' is not in the query's output"
        " (it has: max_cpu, server)",
    ]


def test_group_by_is_not_checked_when_the_output_is_unknowable(tmp_path: Path) -> None:
    path = write(tmp_path, "raw.yaml", GOOD.format(id="raw").replace("[service]", "[anything]"))

    assert problems(path) == []


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", GOOD.format(id="dup") + "severity: high\n")

    assert problems(path) == [f"{path}:9: duplicate key 'severity' (first at line 7)"]


def test_shape_problems(tmp_path: Path) -> None:
    listed = f"- {GOOD.format(id='ok')}".replace("\n", "\n  ") + "\n- 3\n"
    path = write(tmp_path, "shape.yaml", listed)
    scalar = write(tmp_path, "scalar.yaml", "just words\n")
    empty = write(tmp_path, "empty.yaml", "# nothing yet\n")

    assert problems(path, scalar, empty) == [
        f"{path}:10: a rule must be a mapping, got the value 3",
        f"{scalar}:1: expected a rule or a list of rules, got the text 'just words'",
    ]


def test_missing_paths_are_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    assert problems(missing) == [f"{missing}:0: no such file or folder"]


def test_every_problem_of_every_file_in_one_error(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", GOOD.format(id="one") + "window: soon\nrealert: later\n")
    two = write(tmp_path, "two.yaml", "id: [\n")

    with pytest.raises(RuleFileError) as raised:
        load_rules([one, two], include_shipped=False)

    assert raised.value.problems == [
        Problem(str(one), 9, "window: bad duration 'soon': use forms like 30s, 5m, 1h, 1d"),
        Problem(str(one), 10, "realert: bad duration 'later': use forms like 30s, 5m, 1h, 1d"),
        Problem(
            str(two),
            2,
            "invalid YAML: expected the node content, but found '<stream end>'"
            " (while parsing a flow node started at line 2)",
        ),
    ]
    assert str(raised.value).splitlines() == [str(p) for p in raised.value.problems]


def test_shipped_rules_are_valid_and_included_by_default(tmp_path: Path) -> None:
    assert validate_paths([]) == []
    shipped = load_rules([])
    mine = load_rules([write(tmp_path, "mine.yaml", GOOD.format(id="mine"))])

    assert len(shipped) >= 9
    assert [r.id for r in mine] == [r.id for r in shipped] + ["mine"]
    assert load_rules([], include_shipped=False) == []
