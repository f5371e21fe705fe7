"""SPLUNK_* settings: defaults, and refusals that name the variable to fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.errors import ConfigError
from integrations.splunk import SplunkSearchBackend, SplunkSettings, load_splunk_settings

TOKEN = "tok-3c8e1f0a9b"
PASSWORD = "pw-7d2b9e4f1a"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SPLUNK_"):
            monkeypatch.delenv(name)


def refusal(**values: object) -> str:
    with pytest.raises(ConfigError) as refused:
        load_splunk_settings(**values)
    return str(refused.value)


def test_defaults_keep_tls_verification_on() -> None:
    settings = load_splunk_settings(host="splunk.example.com", token=TOKEN)

    assert settings.base_url == "https://splunk.example.com:8089"
    assert settings.verify_tls is True and settings.ca_file is None
    assert (settings.app, settings.owner) == ("search", "nobody")
    assert settings.max_concurrent == 3
    assert settings.search_timeout == 120
    assert settings.max_results == 50_000
    assert settings.search_web_url == "https://splunk.example.com:8000"
    assert settings.auth_method == "token"


def test_settings_come_from_splunk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLUNK_HOST", "10.0.0.5")
    monkeypatch.setenv("SPLUNK_PORT", "18089")
    monkeypatch.setenv("SPLUNK_USERNAME", "svc-bot")
    monkeypatch.setenv("SPLUNK_PASSWORD", PASSWORD)
    monkeypatch.setenv("SPLUNK_MAX_CONCURRENT", "5")
    monkeypatch.setenv("SPLUNK_WEB_URL", "https://splunk.example.com/")
    monkeypatch.setenv("SPLUNK_HOME", "/opt/splunk")  # other SPLUNK_ variables are ignored

    settings = load_splunk_settings()

    assert settings.base_url == "https://10.0.0.5:18089"
    assert settings.auth_method == "password"
    assert settings.auth_variables == "SPLUNK_USERNAME and SPLUNK_PASSWORD"
    assert settings.max_concurrent == 5
    assert settings.search_web_url == "https://splunk.example.com"
    assert settings.secret_values() == [PASSWORD]


def test_the_host_is_required_when_splunk_is_used() -> None:
    SplunkSettings()  # building is fine: nothing is checked until it is used

    assert refusal(token=TOKEN).startswith("SPLUNK_HOST: required")
    with pytest.raises(ConfigError, match="SPLUNK_HOST"):
        SplunkSearchBackend(SplunkSettings(token=SecretStr(TOKEN)))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "SPLUNK_TOKEN (or SPLUNK_USERNAME and SPLUNK_PASSWORD): required"),
        (
            {"token": TOKEN, "username": "svc-bot", "password": PASSWORD},
            "SPLUNK_TOKEN and SPLUNK_USERNAME/SPLUNK_PASSWORD are both set: choose one",
        ),
        ({"token": TOKEN, "username": "svc-bot"}, "are both set"),
        ({"username": "svc-bot"}, "SPLUNK_PASSWORD: required with SPLUNK_USERNAME"),
        ({"password": PASSWORD}, "SPLUNK_USERNAME: required with SPLUNK_PASSWORD"),
        ({"token": "  "}, "SPLUNK_TOKEN (or SPLUNK_USERNAME and SPLUNK_PASSWORD): required"),
    ],
)
def test_exactly_one_authentication_method(values: dict[str, str], expected: str) -> None:
    assert expected in refusal(host="splunk.example.com", **values)


def test_every_problem_is_reported_at_once_and_secrets_are_not_echoed(tmp_path: Path) -> None:
    text = refusal(password=PASSWORD, ca_file=tmp_path / "missing.pem", web_url="splunk:8000")

    assert text.splitlines() == [
        "SPLUNK_HOST: required (the splunkd management host, e.g. splunk.example.com)",
        "SPLUNK_USERNAME: required with SPLUNK_PASSWORD",
        f"SPLUNK_CA_FILE: no such file: {tmp_path / 'missing.pem'}",
        "SPLUNK_WEB_URL: must be an http(s) address such as https://splunk.example.com:8000"
        " (got 'splunk:8000')",
    ]
    assert PASSWORD not in text


def test_a_ca_file_needs_verification_on(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")

    text = refusal(host="splunk", token=TOKEN, ca_file=ca, verify_tls=False)

    assert text == (
        "SPLUNK_CA_FILE is set but SPLUNK_VERIFY_TLS is false: keep verification on to use "
        "the CA file"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("port", "0", "SPLUNK_PORT: Input should be greater than or equal to 1 (got '0')"),
        ("scheme", "ftp", "SPLUNK_SCHEME: Input should be 'https' or 'http' (got 'ftp')"),
        ("max_concurrent", "0", "SPLUNK_MAX_CONCURRENT: Input should be greater than or equal"),
        ("search_timeout", "-1", "SPLUNK_SEARCH_TIMEOUT: Input should be greater than 0"),
    ],
)
def test_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(f"SPLUNK_{name.upper()}", value)

    assert refusal(host="splunk", token=TOKEN).startswith(expected)
