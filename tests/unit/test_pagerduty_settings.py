"""PAGERDUTY_… settings: parsing, routing by channel, problems named by variable, no secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.settings import RateLimit
from integrations.pagerduty.settings import (
    EU_API_URL,
    EU_EVENTS_URL,
    PagerDutySettings,
    load_pagerduty_settings,
)

KEY = "R0UT1NGKEYDB00000000000000000001"
WEB = "R0UT1NGKEYWEB0000000000000000002"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PAGERDUTY_"):
            monkeypatch.delenv(name)


def test_nothing_set_is_off() -> None:
    settings = PagerDutySettings()
    assert not settings.enabled and not settings.rest_enabled and settings.channels == []
    assert settings.events_url == "https://events.pagerduty.com"


def test_environment_with_channels_rotation_and_eu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", KEY)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEYS", f'{{"oncall-web": "{WEB}"}}')
    monkeypatch.setenv("PAGERDUTY_WEBHOOK_SECRETS", " new-secret , old-secret ,")
    monkeypatch.setenv("PAGERDUTY_EVENTS_URL", EU_EVENTS_URL + "/")
    monkeypatch.setenv("PAGERDUTY_API_URL", EU_API_URL)
    settings = load_pagerduty_settings(channels=["default", "oncall-web"])
    assert settings.channels == ["default", "oncall-web"]
    assert settings.routing_key_for("default") == KEY
    assert settings.routing_key_for("oncall-web") == WEB
    assert settings.routing_key_for("oncall-dba") is None
    assert [s.get_secret_value() for s in settings.webhook_secrets] == ["new-secret", "old-secret"]
    assert settings.events_url == "https://events.eu.pagerduty.com"
    assert KEY not in repr(settings) and "new-secret" not in repr(settings)


def test_no_rolling_minute_exceeds_the_budget() -> None:
    for per_minute in (96, 6, 1000):
        (limit,) = PagerDutySettings(events_per_minute=per_minute).outbox_rate_limit().values()
        assert limit.burst + limit.rate * 60 == pytest.approx(per_minute)
        assert (limit.window_max, limit.window) == (per_minute, 60.0)  # the API's own statement
    assert PagerDutySettings(events_per_minute=96).outbox_rate_limit() == {
        "pagerduty": RateLimit(rate=86 / 60, burst=10, window_max=96)
    }


def test_problems_name_the_variable_and_never_the_secret() -> None:
    with pytest.raises(ConfigError) as refused:
        load_pagerduty_settings(
            channels=["default", "oncall-dba"],
            routing_key="short-secret-value",
            routing_keys={"oncall-web": "also-a-secret"},
            ca_file="/nonexistent/ca.pem",
        )
    lines = str(refused.value).splitlines()
    assert lines == [
        "PAGERDUTY_ROUTING_KEY: must be 32 characters",
        "PAGERDUTY_ROUTING_KEYS.oncall-web: must be 32 characters",
        "PAGERDUTY_ROUTING_KEYS: no routing key for channel 'oncall-dba' (named by BOT_ESCALATION)",
        "PAGERDUTY_CA_FILE: no such file: /nonexistent/ca.pem",
    ]
    with pytest.raises(ConfigError, match="PAGERDUTY_ROUTING_KEY: required"):
        load_pagerduty_settings()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"events_url": "http://events.pagerduty.com"}, "PAGERDUTY_EVENTS_URL: must be an https"),
        ({"routing_keys": "{not json"}, "PAGERDUTY_ROUTING_KEYS: must be a JSON object"),
        ({"routing_keys": '{"a b": "x"}'}, "PAGERDUTY_ROUTING_KEYS: bad channel name 'a b'"),
        ({"from_email": "nobody"}, "PAGERDUTY_FROM_EMAIL: must be the e-mail"),
        ({"events_per_minute": 0}, "PAGERDUTY_EVENTS_PER_MINUTE"),
    ],
)
def test_bad_values_are_refused_by_name(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_pagerduty_settings(routing_key=KEY, **overrides)
    assert str(refused.value).startswith(expected)


def test_a_bad_secret_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as refused:
        load_pagerduty_settings(routing_keys='{"web": 12345678901234567890}')
    assert "12345678901234567890" not in str(refused.value)


def test_every_setting_is_in_the_guide() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "pagerduty.md").read_text()
    names = [f"PAGERDUTY_{name.upper()}" for name in PagerDutySettings.model_fields]
    assert [n for n in names if f"`{n}`" not in guide] == []
