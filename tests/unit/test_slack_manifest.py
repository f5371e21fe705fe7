"""The Slack app manifests ask for what the bot uses and point Slack at the bot's route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from integrations.slack.integration import EVENTS_PATH
from integrations.slack.settings import SlackSettings

MANIFESTS = Path(__file__).resolve().parents[2] / "infrastructure" / "slack"
SCOPES = {
    "app_mentions:read",
    "chat:write",
    "chat:write.public",
    "commands",
    "files:write",
    "im:write",
    "usergroups:read",
    "users:read",
}


def manifest(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((MANIFESTS / name).read_text())
    return data


@pytest.mark.parametrize("name", ["manifest.yaml", "manifest.socket-mode.yaml"])
def test_scopes_command_and_events(name: str) -> None:
    data = manifest(name)
    assert set(data["oauth_config"]["scopes"]["bot"]) == SCOPES
    (command,) = data["features"]["slash_commands"]
    assert command["command"] == SlackSettings().command
    assert data["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert data["settings"]["interactivity"]["is_enabled"] is True


def test_http_mode_points_every_request_url_at_the_bot() -> None:
    data = manifest("manifest.yaml")
    urls = [
        data["features"]["slash_commands"][0]["url"],
        data["settings"]["event_subscriptions"]["request_url"],
        data["settings"]["interactivity"]["request_url"],
    ]
    assert urls == [f"https://<your-host>{EVENTS_PATH}"] * 3
    assert data["settings"]["socket_mode_enabled"] is False


def test_socket_mode_needs_no_address() -> None:
    data = manifest("manifest.socket-mode.yaml")
    assert data["settings"]["socket_mode_enabled"] is True
    assert "url" not in data["features"]["slash_commands"][0]
    assert "request_url" not in data["settings"]["interactivity"]
