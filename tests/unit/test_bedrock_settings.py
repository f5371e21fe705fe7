"""Bedrock settings come from their own variables and refuse what cannot work, naming it."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from bot.errors import ConfigError
from integrations.bedrock.settings import load_bedrock_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("BEDROCK_", "AWS_")):
            monkeypatch.delenv(name)


def test_defaults_and_explicit_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDROCK_MODEL_ID", "us.anthropic.claude-3-5-haiku-20241022-v1:0")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    settings = load_bedrock_settings()
    assert settings.model_id == "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    assert settings.region == "eu-central-1" and settings.endpoint_url == ""
    assert (settings.max_tokens, settings.rpm) == (600, 40)
    assert settings.timeout == timedelta(seconds=30) and settings.fallback_model_id == ""


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "BEDROCK_MODEL_ID": "m-primary",
        "BEDROCK_FALLBACK_MODEL_ID": "m-fallback",
        "AWS_DEFAULT_REGION": "us-west-2",
        "BEDROCK_ENDPOINT_URL": "https://vpce-0abc.bedrock-runtime.us-west-2.vpce.amazonaws.com",
        "BEDROCK_MAX_TOKENS": "900",
        "BEDROCK_TIMEOUT": "45s",
        "BEDROCK_RPM": "120",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_bedrock_settings()
    assert settings.fallback_model_id == "m-fallback" and settings.region == "us-west-2"
    assert settings.endpoint_url.startswith("https://vpce-")
    assert (settings.max_tokens, settings.rpm, settings.timeout_s) == (900, 120, 45.0)


def test_a_model_is_required() -> None:
    with pytest.raises(ConfigError, match="BEDROCK_MODEL_ID: required"):
        load_bedrock_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BEDROCK_RPM", "0"),
        ("BEDROCK_RPM", "lots"),
        ("BEDROCK_TIMEOUT", "soon"),
        ("BEDROCK_TIMEOUT", "0s"),
        ("BEDROCK_MAX_TOKENS", "10"),
        ("BEDROCK_ENDPOINT_URL", "bedrock.internal:443"),
        ("BEDROCK_FALLBACK_MODEL_ID", "m-primary"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("BEDROCK_MODEL_ID", "m-primary")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load_bedrock_settings()
