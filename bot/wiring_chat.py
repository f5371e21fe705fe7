"""Chat surfaces for the composition root: the console always, Slack and Teams when their
settings enable them, each with the inbound routes it receives calls on. Each is imported only
when enabled (their SDKs are large: Teams' alone is about 30 MiB)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from sqlalchemy import Engine

from bot.errors import ConfigError
from bot.events import Broadcaster
from bot.operations import Operations
from bot.ports import ChatSurface, Clock, DirectSurface
from bot.settings import Settings
from integrations.console import ConsoleChatSurface
from integrations.slack import SlackSettings
from integrations.teams import TeamsSettings

if TYPE_CHECKING:
    from integrations.slack import SlackIntegration
    from integrations.teams import TeamsIntegration


@dataclass(frozen=True, slots=True)
class ChatParts:
    surfaces: dict[str, ChatSurface]
    teams: TeamsIntegration | None = None
    slack: SlackIntegration | None = None

    def direct(self) -> tuple[str, ...]:
        """The surfaces that can talk to one person (approval requests go there)."""
        return tuple(
            name for name, found in self.surfaces.items() if isinstance(found, DirectSurface)
        )

    def routers(self) -> list[APIRouter]:
        """The HTTP routes Teams and Slack receive calls on, when they are enabled."""
        found = []
        if self.teams is not None:
            found.append(self.teams.router)
        if self.slack is not None:
            found.append(self.slack.router)
        return found


def default_channels(teams: TeamsSettings, slack: SlackSettings) -> dict[str, str]:
    """Each surface in use and its default channel (empty: only routed incidents go there)."""
    defaults = {"console": "console"}
    if teams.enabled:
        defaults["teams"] = teams.default_channel
    if slack.enabled:
        defaults["slack"] = slack.default_channel
    return defaults


def from_settings(
    teams: TeamsSettings,
    slack: SlackSettings,
    *,
    operations: Operations,
    engine: Engine,
    console_url: str,
    clock: Clock,
    broadcaster: Broadcaster,
    teams_tokens: Any = None,
) -> ChatParts:
    """Raises ConfigError when Teams or Slack is enabled with settings that cannot work;
    ``teams_tokens`` replaces MSAL for Teams' outbound tokens (tests)."""
    surfaces: dict[str, ChatSurface] = {"console": ConsoleChatSurface(broadcaster)}
    teams_part: TeamsIntegration | None = None
    if teams.enabled:
        from integrations.teams import build_teams

        teams_part = build_teams(
            teams, operations, engine, console_url, clock, token_provider=teams_tokens
        )
        surfaces["teams"] = teams_part.surface
    slack_part: SlackIntegration | None = None
    if slack.enabled:
        from integrations.slack import build_slack

        slack_part = build_slack(slack, operations, console_url)
        surfaces["slack"] = slack_part.surface
    return ChatParts(surfaces, teams_part, slack_part)


def build_teams_package(settings: Settings, out: Path) -> Path:
    """The Teams app package (manifest and icons) to upload in Teams."""
    from integrations.teams.package import build_package

    teams = TeamsSettings()
    if not teams.app_id:
        raise ConfigError("TEAMS_APP_ID: required to build the Teams app package")
    return build_package(teams.app_id, out, settings.console_url)
