"""Microsoft Teams: incident cards in channels and chats, card buttons and text commands."""

from integrations.teams.integration import TeamsIntegration, build_teams
from integrations.teams.settings import TeamsSettings, load_teams_settings
from integrations.teams.surface import TeamsChatSurface

__all__ = [
    "TeamsChatSurface",
    "TeamsIntegration",
    "TeamsSettings",
    "build_teams",
    "load_teams_settings",
]
