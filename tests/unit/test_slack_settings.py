"""Slack settings from the environment, and the errors that name the variable to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from integrations.slack.settings import SlackSettings, load_slack_settings

TOKEN = "xoxb-123-456-abcdefabcdef"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "SLACK_DEFAULT_CHANNEL",
        "SLACK_COMMAND",
        "SLACK_DIGEST_AFTER",
        "SLACK_ROLE_GROUPS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_nothing_set_means_slack_is_off() -> None:
    settings = load_slack_settings()
    assert not settings.enabled and settings.api_url == "https://slack.com/api/"
    assert settings.command == "/incident" and settings.digest_after == 10


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", "https://slack-gov.com/api")
    monkeypatch.setenv("SLACK_DEFAULT_CHANNEL", "C0INCIDENT")
    monkeypatch.setenv("SLACK_DIGEST_AFTER", "25")
    monkeypatch.setenv("SLACK_UNRELATED", "ignored")
    settings = load_slack_settings()
    assert settings.enabled and not settings.socket_mode
    assert settings.api_url == "https://slack-gov.com/api/"  # the trailing slash is kept
    assert settings.default_channel == "C0INCIDENT" and settings.digest_after == 25
    assert settings.secret_values() == [TOKEN, SECRET]


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = load_slack_settings(bot_token=TOKEN, app_token="xapp-1-A1-2-abc")
    assert settings.socket_mode


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"signing_secret": SECRET}, "SLACK_BOT_TOKEN: required"),
        ({"bot_token": "xoxp-user-token"}, "SLACK_BOT_TOKEN: must be a bot token starting with"),
        ({"bot_token": TOKEN}, "SLACK_SIGNING_SECRET: required in HTTP mode"),
        (
            {"bot_token": TOKEN, "app_token": "xoxb-wrong"},
            "SLACK_APP_TOKEN: must be an app-level token starting with xapp-",
        ),
        (
            {"bot_token": TOKEN, "signing_secret": SECRET, "default_channel": "#incidents"},
            "SLACK_DEFAULT_CHANNEL: use the channel's ID",
        ),
        (
            {"bot_token": TOKEN, "signing_secret": SECRET, "command": "incident"},
            "SLACK_COMMAND: must look like /incident",
        ),
        ({"api_url": "slack.com"}, "SLACK_API_URL: must be an http(s) address"),
        ({"api_url": "https://slack.com/"}, "SLACK_API_URL: must end with /api/"),
        ({"digest_after": 0}, "SLACK_DIGEST_AFTER: Input should be greater than or equal to 1"),
    ],
)
def test_problems_name_the_variable(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_slack_settings(**overrides)
    assert says in str(caught.value)


def test_secrets_never_appear_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_slack_settings(bot_token="xoxp-secret-value-123", signing_secret=SECRET)
    assert "xoxp-secret-value-123" not in str(caught.value)


@pytest.mark.parametrize(
    ("configured", "identities", "expected"),
    [
        (None, ["slack:U1", "slack-group:S1"], True),
        (None, ["slack:U1", "console:alice"], False),
        (False, ["slack-group:S1"], False),
        (True, [], True),
    ],
)
def test_user_groups_are_looked_up_when_the_roles_name_them(
    configured: bool | None, identities: list[str], expected: bool
) -> None:
    settings = SlackSettings(role_groups=configured)
    assert settings.uses_role_groups(identities) is expected


def test_every_setting_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "slack.md").read_text()
    missing = [name for name in SlackSettings.model_fields if f"`SLACK_{name.upper()}`" not in docs]
    assert missing == []


def test_the_outbox_budget_stays_within_slacks_limits() -> None:
    limits = SlackSettings().outbox_rate_limits()
    # bursts one short of Slack's (3 posts, 5 updates): Slack counts arrivals, the bot sends
    assert limits["slack"].rate <= 1 and limits["slack"].burst <= 2
    assert limits["slack.update"].rate * 60 <= 50 and limits["slack.update"].burst <= 4
