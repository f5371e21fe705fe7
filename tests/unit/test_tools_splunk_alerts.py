"""Converting one savedsearches.conf stanza into a rule, and saying what did not convert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from detectors.tools.splunk_alerts import Conversion, convert, duration_text, slug
from detectors.tools.splunk_conf import Stanza

ALERT = {
    "search": "index=web status>=500",
    "cron_schedule": "*/5 * * * *",
    "dispatch.earliest_time": "-5m@m",
    "dispatch.latest_time": "now",
    "counttype": "number of events",
    "relation": "greater than",
    "quantity": "20",
    "alert.track": "1",
}


def conversion(
    name: str = "Web errors", taken: set[str] | None = None, **values: str
) -> Conversion:
    settings = {**ALERT, **{k.replace("__", "."): v for k, v in values.items()}}
    return convert(Stanza(name, 3, settings), set() if taken is None else taken)


def rule(**values: str) -> dict[str, Any]:
    converted = conversion(**values)
    assert converted.reasons == ()
    assert converted.rule is not None
    return converted.rule


def test_a_count_alert_becomes_a_threshold_rule() -> None:
    converted = conversion(description="5xx from nginx", alert__severity="5")

    assert converted.rule == {
        "id": "web-errors",
        "title": "Web errors",
        "description": "5xx from nginx",
        "type": "threshold",
        "query": "index=web status>=500",
        "schedule": "*/5 * * * *",
        "window": "5m",
        "threshold": {"op": ">", "value": 20},
        "severity": "high",
        "category": "application",
    }
    assert converted.dropped == ()


@pytest.mark.parametrize(
    ("level", "severity"),
    [("1", "info"), ("2", "info"), ("3", "low"), ("4", "medium"), ("5", "high"), ("6", "critical")],
)
def test_severity_levels(level: str, severity: str) -> None:
    assert rule(alert__severity=level)["severity"] == severity


def test_an_unknown_severity_falls_back_to_low_and_says_so() -> None:
    converted = conversion(alert__severity="9")

    assert converted.rule is not None and converted.rule["severity"] == "low"
    assert converted.dropped == ("alert.severity = 9 is not 1 to 6: the rule uses low",)


@pytest.mark.parametrize(
    ("relation", "op"),
    [("greater than", ">"), ("less than", "<"), ("equal to", "=="), ("not equal to", "!=")],
)
def test_relations(relation: str, op: str) -> None:
    assert rule(relation=relation, quantity="2.5")["threshold"] == {"op": op, "value": 2.5}


def test_the_rest_api_spelling_of_the_condition_and_always() -> None:
    rest = {k: v for k, v in ALERT.items() if k not in ("counttype", "relation", "quantity")}
    rest |= {
        "alert_type": "number of results",
        "alert_comparator": "less than",
        "alert_threshold": "1",
    }

    converted = convert(Stanza("x", 1, rest), set())

    assert converted.rule is not None
    assert converted.rule["threshold"] == {"op": "<", "value": 1}
    assert rule(counttype="always")["threshold"] == {"op": ">=", "value": 0}


def test_time_ranges_become_window_and_query_delay() -> None:
    delayed = rule(dispatch__earliest_time="-20m@m", dispatch__latest_time="-5m@m")
    assert (delayed["window"], delayed["query_delay"]) == ("15m", "5m")
    hours = rule(dispatch__earliest_time="-2hours", dispatch__latest_time="")
    assert (hours["window"], "query_delay" in hours) == ("2h", False)

    snapped = conversion(dispatch__earliest_time="-1d@d", dispatch__latest_time="@d")
    assert snapped.rule is not None and snapped.rule["window"] == "1d"
    assert snapped.dropped[0].startswith("dispatch.earliest_time = -1d@d: rule windows are not")


def test_suppression_fields_become_group_by_and_the_period_realert() -> None:
    converted = conversion(
        alert__suppress="1",
        alert__suppress__fields="host, user",
        alert__suppress__period="1h",
    )

    assert converted.rule is not None
    assert converted.rule["group_by"] == ["host", "user"]
    assert converted.rule["realert"] == "1h"
    assert converted.dropped == (
        "Splunk compares the count of all results; the rule compares each group's count "
        "(group_by host, user from alert.suppress.fields)",
    )
    assert "group_by" not in rule(alert__suppress="0", alert__suppress__fields="host")


def test_disabled_unscheduled_and_without_cron() -> None:
    assert rule(disabled="1")["enabled"] is False
    unscheduled = conversion(enableSched="0")
    assert unscheduled.rule is not None and unscheduled.rule["enabled"] is False
    assert unscheduled.dropped == (
        "enableSched = 0: the search is not scheduled; the rule is disabled",
    )
    no_cron = conversion(cron_schedule="")
    assert no_cron.rule is not None
    assert (no_cron.rule["interval"], "schedule" in no_cron.rule) == ("5m", False)


def test_actions_and_unknown_settings_are_listed_and_bookkeeping_is_not() -> None:
    converted = conversion(
        action__email="1",
        action__email__to="oncall@example.com",
        actions="webhook",
        display__page="x",
        dispatch__ttl="2p",
        alert__digest_mode="0",
        dispatch__max_count="500",
    )

    assert converted.dropped == (
        "alert.digest_mode = 0 (trigger for each result): the rule raises one incident per "
        "group_by group instead",
        "alert actions (email, webhook) are not converted: the bot posts cards where its "
        "routes say (BOT_ROUTES)",
        "dispatch.max_count = 500 is not converted",
    )


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"counttype": "custom", "alert_condition": "search count > 5"},
            "custom alert condition (search count > 5) is not converted",
        ),
        ({"counttype": "number of hosts"}, "counttype = number of hosts is not converted"),
        ({"relation": "rises by"}, "relation = rises by is not converted"),
        ({"quantity": "many"}, "quantity = many is not a number"),
        ({"dispatch__earliest_time": "rt-5m"}, "real-time searches are not converted"),
        ({"dispatch__earliest_time": "1714564800"}, "an absolute time cannot repeat"),
        ({"dispatch__earliest_time": "-1mon"}, "unit 'mon' is not converted"),
        ({"dispatch__earliest_time": ""}, "no dispatch.earliest_time: the search covers all time"),
        ({"dispatch__latest_time": "-1h"}, "is not before dispatch.latest_time = -1h"),
        ({"search": "  "}, "no 'search' to run"),
    ],
)
def test_what_does_not_convert_says_why(values: dict[str, str], reason: str) -> None:
    converted = conversion(**values)

    assert converted.rule is None
    assert any(reason in text for text in converted.reasons), converted.reasons


def test_a_scheduled_report_is_not_an_alert() -> None:
    report = {k: v for k, v in ALERT.items() if k not in ("counttype", "alert.track")}

    converted = convert(Stanza("Daily usage", 1, report), set())

    assert converted.rule is None
    assert converted.reasons == (
        "not an alert: no alert condition, alert action or tracking is set",
    )


def test_ids_are_slugs_unique_among_those_taken() -> None:
    taken = {"web-5xx-burst"}

    assert slug("Web 5xx burst!", taken) == "web-5xx-burst-2"
    assert slug("Web 5xx burst", taken) == "web-5xx-burst-3"
    assert slug("***", taken) == "imported"
    converted = conversion("Web 5xx burst", taken)
    assert converted.rule is not None and converted.rule["id"] == "web-5xx-burst-4"


def test_durations_use_the_largest_even_unit() -> None:
    assert [duration_text(timedelta(seconds=s)) for s in (90, 3600, 86_400 * 14, 0)] == [
        "90s",
        "1h",
        "2w",
        "0s",
    ]
