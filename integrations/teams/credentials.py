"""How the bot proves who it is: SDK auth configuration, token providers, connections.

Inbound requests are checked against :func:`auth_configuration` (the app id is the token's
audience). Outbound calls to the Bot Connector carry a token from the ``SERVICE_CONNECTION``
of :func:`connections`: MSAL with the app password or a certificate, or, in tests, any
:class:`AccessTokenProviderBase` handed in (the SDK sends no ``Authorization`` header for an
empty token, so a test provider returns a fixed non-empty one).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msal
from azure.core.credentials_async import AsyncTokenCredential
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.core import (
    AccessTokenProviderBase,
    AgentAuthConfiguration,
    AuthTypes,
    ConnectionManager,
    Connections,
)

from integrations.teams.settings import TeamsSettings

SERVICE_CONNECTION = "SERVICE_CONNECTION"
_ONLY_BEARER = "the Teams integration only needs client-credential tokens"


def auth_configuration(settings: TeamsSettings) -> AgentAuthConfiguration:
    """The SDK's view of the app registration (also what inbound tokens are checked against)."""
    auth_type = AuthTypes.certificate if settings.uses_certificate else AuthTypes.client_secret
    secret = settings.app_password.get_secret_value() if settings.app_password else None
    # the key file rides in CERT_PFX_FILE for both kinds of certificate: the SDK's MSAL provider
    # reads .pfx files, PemCertificateAuth reads PEM keys
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
        return ConnectionManager(lambda _: provider, {SERVICE_CONNECTION: config})
    if settings.uses_certificate and not settings.uses_pfx:
        return ConnectionManager(
            lambda c: PemCertificateAuth(c, settings.cert_thumbprint), {SERVICE_CONNECTION: config}
        )
    return MsalConnectionManager({SERVICE_CONNECTION: config})


class PemCertificateAuth(AccessTokenProviderBase):
    """Client-credential tokens signed with a PEM private key and its certificate thumbprint.

    (The SDK's MSAL provider reads ``.pfx`` files only; MSAL itself accepts a PEM key plus the
    thumbprint, which is what Entra ID shows for an uploaded certificate.)
    """

    def __init__(self, configuration: AgentAuthConfiguration, thumbprint: str) -> None:
        self._configuration = configuration
        self._thumbprint = thumbprint
        self._client: msal.ConfidentialClientApplication | None = None

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._configuration

    def _app(self) -> msal.ConfidentialClientApplication:
        if self._client is None:
            config = self._configuration
            assert config.CERT_PFX_FILE is not None
            with open(config.CERT_PFX_FILE, encoding="utf-8") as key_file:
                private_key = key_file.read()
            authority = config.AUTHORITY or f"https://login.microsoftonline.com/{config.TENANT_ID}"
            self._client = msal.ConfidentialClientApplication(
                client_id=config.CLIENT_ID,
                authority=authority,
                client_credential={"private_key": private_key, "thumbprint": self._thumbprint},
            )
        return self._client

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        def acquire() -> dict[str, Any]:
            result: dict[str, Any] = self._app().acquire_token_for_client(scopes=scopes)
            return result

        result = await asyncio.to_thread(acquire)
        token = result.get("access_token")
        if not token:
            raise ValueError(
                "Entra ID refused a token for the bot's certificate: "
                f"{result.get('error', 'unknown error')}: {result.get('error_description', '')}"
            )
        return str(token)

    def get_token_credential(self) -> AsyncTokenCredential:
        raise NotImplementedError(_ONLY_BEARER)

    async def acquire_token_on_behalf_of(self, scopes: list[str], user_assertion: str) -> str:
        raise NotImplementedError(_ONLY_BEARER)

    async def get_agentic_application_token(
        self, tenant_id: str, agent_app_instance_id: str
    ) -> str | None:
        raise NotImplementedError(_ONLY_BEARER)

    async def get_agentic_instance_token(
        self, tenant_id: str, agent_app_instance_id: str
    ) -> tuple[str, str]:
        raise NotImplementedError(_ONLY_BEARER)

    async def get_agentic_user_token(
        self, tenant_id: str, agent_app_instance_id: str, agentic_user_id: str, scopes: list[str]
    ) -> str | None:
        raise NotImplementedError(_ONLY_BEARER)
