"""Teams settings: what is required, what conflicts, and anonymous access only on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import ConfigError
from integrations.teams.credentials import auth_configuration, connections
from integrations.teams.settings import TeamsSettings, load_teams_settings
from integrations.teams.tokens import EntraTokens

APP = "9d3a1f6e-4b2c-4e8d-a1f0-6c5b4a3d2e1f"
TENANT = "5e1b7c9d-2f4a-4b6c-8d0e-1f3a5b7c9d0e"
PASSWORD = "pw-Zq8~example-secret-value"
THUMBPRINT = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TEAMS_"):
            monkeypatch.delenv(name)


def problems(**values: object) -> str:
    with pytest.raises(ConfigError) as refused:
        load_teams_settings(**values)
    return str(refused.value)


def test_off_without_an_app_id() -> None:
    assert load_teams_settings().enabled is False


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAMS_APP_ID", APP)
    monkeypatch.setenv("TEAMS_TENANT_ID", TENANT)
    monkeypatch.setenv("TEAMS_APP_PASSWORD", PASSWORD)
    monkeypatch.setenv("TEAMS_DEFAULT_CHANNEL", "SRE/General")
    settings = load_teams_settings()
    assert settings.enabled and settings.secret_values() == [PASSWORD]
    assert settings.default_channel == "SRE/General"
    assert PASSWORD not in repr(settings)
    config = auth_configuration(settings)
    assert (config.CLIENT_ID, config.TENANT_ID, config.ANONYMOUS_ALLOWED) == (APP, TENANT, False)


def test_each_missing_piece_is_named() -> None:
    text = problems(app_id=APP)
    assert "TEAMS_TENANT_ID: required" in text
    assert "TEAMS_APP_PASSWORD (or TEAMS_CERT_KEY_FILE" in text


def test_password_and_certificate_conflict(tmp_path: Path) -> None:
    key = tmp_path / "bot.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    text = problems(app_id=APP, tenant_id=TENANT, app_password=PASSWORD, cert_key_file=key)
    assert "choose one way to authenticate" in text and PASSWORD not in text


def test_pem_certificate_needs_its_thumbprint(tmp_path: Path) -> None:
    key = tmp_path / "bot.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    assert "TEAMS_CERT_THUMBPRINT: required" in problems(
        app_id=APP, tenant_id=TENANT, cert_key_file=key
    )
    settings = load_teams_settings(
        app_id=APP, tenant_id=TENANT, cert_key_file=key, cert_thumbprint=THUMBPRINT
    )
    assert settings.cert_thumbprint == THUMBPRINT.replace(":", "")
    pfx = tmp_path / "bot.pfx"
    pfx.write_bytes(b"\x30\x82")
    assert load_teams_settings(app_id=APP, tenant_id=TENANT, cert_key_file=pfx).uses_pfx
    assert "no such file" in problems(
        app_id=APP, tenant_id=TENANT, cert_key_file=tmp_path / "gone.pfx"
    )


def test_unknown_variables_and_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAMS_APP_PASWORD", PASSWORD)
    assert "TEAMS_APP_PASWORD: unknown setting" in problems()
    monkeypatch.delenv("TEAMS_APP_PASWORD")
    assert "TEAMS_TIMEOUT" in problems(timeout=0)
    assert "TEAMS_AUTHORITY: must be an https address" in problems(
        app_id=APP, tenant_id=TENANT, app_password=PASSWORD, authority="http://login.example"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_anonymous_is_allowed_on_loopback(host: str) -> None:
    settings = TeamsSettings(app_id=APP, anonymous=True)
    assert settings.validate_for_host(host) is settings


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.3.7", "bot.example.org"])
def test_anonymous_is_refused_elsewhere(host: str) -> None:
    with pytest.raises(ConfigError, match="TEAMS_ANONYMOUS"):
        TeamsSettings(app_id=APP, anonymous=True).validate_for_host(host)
    assert TeamsSettings(app_id=APP).validate_for_host(host).anonymous is False


def test_each_credential_gets_our_bounded_token_provider(tmp_path: Path) -> None:
    key = tmp_path / "bot.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    pfx = tmp_path / "bot.pfx"
    pfx.write_bytes(b"\x30\x82")
    configured = {
        "secret": load_teams_settings(app_id=APP, tenant_id=TENANT, app_password=PASSWORD),
        "pfx": load_teams_settings(app_id=APP, tenant_id=TENANT, cert_key_file=pfx),
        "pem": load_teams_settings(
            app_id=APP, tenant_id=TENANT, cert_key_file=key, cert_thumbprint=THUMBPRINT
        ),
    }
    for kind, settings in configured.items():
        provider = connections(settings).get_default_connection()
        assert isinstance(provider, EntraTokens), kind
        assert provider.timeout == 5.0 and provider.configuration.CLIENT_ID == APP, kind
    assert (
        str(key)
        == connections(configured["pem"]).get_default_connection().configuration.CERT_PFX_FILE
    )


def test_token_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAMS_TOKEN_TIMEOUT", "2.5")
    settings = load_teams_settings(app_id=APP, tenant_id=TENANT, app_password=PASSWORD)
    provider = connections(settings).get_default_connection()
    assert isinstance(provider, EntraTokens) and provider.timeout == 2.5
    monkeypatch.setenv("TEAMS_TOKEN_TIMEOUT", "0")
    assert "TEAMS_TOKEN_TIMEOUT" in problems(app_id=APP, tenant_id=TENANT, app_password=PASSWORD)
