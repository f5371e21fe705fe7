"""Slack as a chat surface: incident cards, buttons, dialogs and the slash command."""

from integrations.slack.errors import SlackRateLimited, SlackRefused, SlackUnavailable
from integrations.slack.integration import SlackIntegration, build_slack
from integrations.slack.render import render_card, render_digest, render_reply
from integrations.slack.settings import SlackSettings, load_slack_settings
from integrations.slack.surface import SlackChatSurface

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
