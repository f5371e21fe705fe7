"""Slack as a chat surface: incident cards, buttons, dialogs and the slash command.

Each name below is imported on first use (:func:`integrations.lazy_exports`): the settings
alone do not load slack_sdk, slack_bolt or aiohttp."""

from typing import TYPE_CHECKING

from integrations import lazy_exports

if TYPE_CHECKING:
    from integrations.slack.errors import SlackRateLimited, SlackRefused, SlackUnavailable
    from integrations.slack.integration import SlackIntegration, build_slack
    from integrations.slack.render import render_card, render_digest, render_reply
    from integrations.slack.settings import SlackSettings, load_slack_settings
    from integrations.slack.surface import SlackChatSurface
else:
    __getattr__ = lazy_exports(
        __name__,
        {
            "SlackRateLimited": "errors",
            "SlackRefused": "errors",
            "SlackUnavailable": "errors",
            "SlackIntegration": "integration",
            "build_slack": "integration",
            "render_card": "render",
            "render_digest": "render",
            "render_reply": "render",
            "SlackSettings": "settings",
            "load_slack_settings": "settings",
            "SlackChatSurface": "surface",
        },
    )

__all__ = [
    "SlackChatSurface",
    "SlackIntegration",
    "SlackRateLimited",
    "SlackRefused",
    "SlackSettings",
    "SlackUnavailable",
    "build_slack",
    "load_slack_settings",
    "render_card",
    "render_digest",
    "render_reply",
]
