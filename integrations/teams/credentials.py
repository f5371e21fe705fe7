"""How the bot proves who it is: SDK auth configuration, token providers, connections.

Inbound requests are checked against :func:`auth_configuration` (the app id is the token's
audience). Outbound calls to the Bot Connector carry a token from the ``SERVICE_CONNECTION``
of :func:`connections`: :class:`~integrations.teams.tokens.EntraTokens` (MSAL with the app
password, a ``.pfx`` file or a PEM key, bounded by ``TEAMS_TOKEN_TIMEOUT``), or, in tests, any
:class:`AccessTokenProviderBase` handed in (the SDK sends no ``Authorization`` header for an
empty token, so a test provider returns a fixed non-empty one).
"""

from __future__ import annotations

from microsoft_agents.hosting.core import (
    AccessTokenProviderBase,
    AgentAuthConfiguration,
    AuthTypes,
    ConnectionManager,
    Connections,
)

from integrations.teams.settings import TeamsSettings
from integrations.teams.tokens import EntraTokens, client_credential

SERVICE_CONNECTION = "SERVICE_CONNECTION"


def auth_configuration(settings: TeamsSettings) -> AgentAuthConfiguration:
    """The SDK's view of the app registration (also what inbound tokens are checked against)."""
    auth_type = AuthTypes.certificate if settings.uses_certificate else AuthTypes.client_secret
    secret = settings.app_password.get_secret_value() if settings.app_password else None
    # the key file rides in CERT_PFX_FILE for both kinds of certificate (EntraTokens tells them
    # apart by the file's suffix)
    return AgentAuthConfiguration(
        auth_type=auth_type,
        client_id=settings.app_id,
        tenant_id=settings.tenant_id or None,
        client_secret=secret,
        cert_pfx_file=str(settings.cert_key_file) if settings.cert_key_file else None,
        authority=settings.authority or None,
        anonymous_allowed=settings.anonymous,
    )


def connections(
    settings: TeamsSettings, token_provider: AccessTokenProviderBase | None = None
) -> Connections:
    """The connection manager the adapter and the agent use for outbound tokens."""
    config = auth_configuration(settings)
    if token_provider is not None:
        provider = token_provider
    else:
        provider = EntraTokens(config, client_credential(settings), settings.token_timeout)
    return ConnectionManager(lambda _: provider, {SERVICE_CONNECTION: config})
