"""Assemble the Teams integration: the chat surface and the ``/api/messages`` router."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from microsoft_agents.hosting.core import AccessTokenProviderBase
from microsoft_agents.hosting.fastapi import CloudAdapter
from sqlalchemy import Engine

from bot.operations import Operations
from bot.ports import Clock, SystemClock
from integrations.teams.agent import TeamsAgent
from integrations.teams.charts import ChartLinks
from integrations.teams.commands import TeamsCommands
from integrations.teams.conversations import ConversationStore
from integrations.teams.credentials import auth_configuration, connections
from integrations.teams.keys import SigningKeys
from integrations.teams.pressers import LastPressers
from integrations.teams.refusals import Refusals
from integrations.teams.settings import TeamsSettings
from integrations.teams.surface import TeamsChatSurface


@dataclass(frozen=True, slots=True)
class TeamsIntegration:
    surface: TeamsChatSurface
    router: APIRouter
    agent: TeamsAgent
    conversations: ConversationStore
    charts: ChartLinks  # set ``charts.url_of`` to put each incident's chart on its card


def build_teams(
    settings: TeamsSettings,
    operations: Operations,
    engine: Engine,
    console_url: str,
    clock: Clock | None = None,
    token_provider: AccessTokenProviderBase | None = None,
) -> TeamsIntegration:
    """Everything Teams needs, wired; raises ConfigError when the settings cannot work.

    ``token_provider`` replaces MSAL for outbound tokens (tests: a fixed token).
    """
    settings.require_usable()
    clock = clock or SystemClock()
    store = ConversationStore(engine, clock)
    links = connections(settings, token_provider)
    charts = ChartLinks()
    agent = TeamsAgent(
        auth_configuration(settings),
        links,
        operations,
        store,
        TeamsCommands(operations, console_url),
        Refusals(engine, clock),
        LastPressers(engine, clock),
        charts,
        SigningKeys(settings.token_timeout),
    )
    # proactive sends get an adapter of their own: no reply-with-the-error handler, so a
    # failed send reaches the outbox as an error it can retry
    outbound = CloudAdapter(connection_manager=links)
    outbound.on_turn_error = None
    surface = TeamsChatSurface(
        outbound,
        settings.app_id,
        store,
        clock,
        settings.timeout,
        settings.default_channel,
        refresh_for=agent.views.refresh_for,
        charts=charts,
    )
    return TeamsIntegration(surface, agent.router(), agent, store, charts)
