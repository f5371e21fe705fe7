"""Routes and matchers as Alertmanager writes them, and the push settings' error texts."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError, PermanentError
from bot.push.config import PushSettings
from bot.push.mapping import CompiledRoute, route_for
from bot.push.matchers import parse_matchers
from bot.settings import load_settings
from tests.push_env import push_settings


@pytest.mark.parametrize(
    ("texts", "labels", "expected"),
    [
        (['service="checkout"'], {"service": "checkout"}, True),
        (["service=checkout"], {"service": "checkout-2"}, False),
        (['service!="checkout"'], {"service": "search"}, True),
        (['instance=~"web-.*"'], {"instance": "web-1:9100"}, True),
        (['instance=~"web"'], {"instance": "web-1"}, False),  # anchored: the whole value
        (['instance!~"web-.*"'], {"instance": "db-1"}, True),
        (
            ['{severity=~"critical|page", team="payments"}'],
            {"severity": "page", "team": "payments"},
            True,
        ),
        (['missing=""'], {"other": "x"}, True),  # an absent label is the empty value
        (['summary="a, \\"quoted\\" value"'], {"summary": 'a, "quoted" value'}, True),
    ],
)
def test_matchers(texts: list[str], labels: dict[str, str], expected: bool) -> None:
    assert all(m.matches(labels) for m in parse_matchers(texts)) is expected


def test_bad_matchers_are_named() -> None:
    with pytest.raises(PermanentError, match="bad matcher 'service'"):
        parse_matchers(["service"])
    with pytest.raises(PermanentError, match="invalid regex"):
        parse_matchers(['host=~"("'])


def test_first_matching_route_wins_and_the_default_takes_the_rest() -> None:
    settings = PushSettings.model_validate(push_settings())
    routes = [CompiledRoute.of(r) for r in settings.all_routes()]
    checkout = {"alertname": "Slow", "service": "checkout", "severity": "critical", "cluster": "a"}
    assert route_for(routes, checkout).route.name == "checkout"
    assert route_for(routes, checkout).grouping(checkout) == (
        ("alertname", "Slow"),
        ("cluster", "a"),
    )
    other = {"alertname": "Slow", "service": "checkout", "severity": "warning"}
    assert route_for(routes, other).route.name == "default"


def test_settings_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(push={"senders": [{"name": "prom", "token_sha256": "abc"}]})
    assert "BOT_PUSH.senders.0.token_sha256" in str(caught.value)
    assert "64 hex digits" in str(caught.value)
    with pytest.raises(ConfigError, match="set token_sha256"):
        load_settings(push={"senders": [{"name": "prom"}]})
    with pytest.raises(ConfigError, match="route 'a' is listed twice"):
        load_settings(push={"routes": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match="bad matcher"):
        load_settings(push={"routes": [{"name": "a", "matchers": ["nope"]}]})
