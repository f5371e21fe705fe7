"""Microsoft Teams: incident cards in channels and chats, card buttons and text commands.

Each name below is imported on first use (:func:`integrations.lazy_exports`): the settings
alone do not load the Microsoft Agents SDK or MSAL."""

from typing import TYPE_CHECKING

from integrations import lazy_exports

if TYPE_CHECKING:
    from integrations.teams.integration import TeamsIntegration, build_teams
    from integrations.teams.settings import TeamsSettings, load_teams_settings
    from integrations.teams.surface import TeamsChatSurface
else:
    __getattr__ = lazy_exports(
        __name__,
        {
            "TeamsIntegration": "integration",
            "build_teams": "integration",
            "TeamsSettings": "settings",
            "load_teams_settings": "settings",
            "TeamsChatSurface": "surface",
        },
    )

__all__ = [
    "TeamsChatSurface",
    "TeamsIntegration",
    "TeamsSettings",
    "build_teams",
    "load_teams_settings",
]
