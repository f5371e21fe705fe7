"""Bedrock settings: explicit environment variable names, validated once at start-up.

``BedrockSettings()`` can be built with nothing set; :func:`load_bedrock_settings` (and
:class:`~integrations.bedrock.BedrockRcaEngine`) refuse a configuration that cannot work, naming
each variable. Credentials never live here: boto3 finds them through the standard AWS chain
(environment, shared files, SSO, the ECS task role, instance metadata).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.settings import Duration, load_checked

ENV_NAMES = {
    "model_id": "BEDROCK_MODEL_ID",
    "fallback_model_id": "BEDROCK_FALLBACK_MODEL_ID",
    "region": "AWS_REGION",
    "endpoint_url": "BEDROCK_ENDPOINT_URL",
    "max_tokens": "BEDROCK_MAX_TOKENS",
    "timeout": "BEDROCK_TIMEOUT",
    "rpm": "BEDROCK_RPM",
    "evidence_tokens": "BEDROCK_EVIDENCE_TOKENS",
}


class BedrockSettings(BaseSettings):
    """Which model answers, where, and how hard the bot may use it.

    ``model_id`` is a model id (``anthropic.claude-3-5-haiku-20241022-v1:0``) or an inference
    profile id or ARN (``us.anthropic.claude-3-5-haiku-20241022-v1:0``). ``endpoint_url``
    overrides the service address; unset, boto3 applies ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``
    (then ``AWS_ENDPOINT_URL``) on its own. ``timeout`` bounds one analysis (waiting for the rate
    limit, the call and its retries); ``rpm`` is the most requests started in any minute;
    ``evidence_tokens`` is the size budget of the evidence pack.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    model_id: str = Field(default="", validation_alias="BEDROCK_MODEL_ID")
    fallback_model_id: str = Field(default="", validation_alias="BEDROCK_FALLBACK_MODEL_ID")
    region: str = Field(
        default="", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    endpoint_url: str = Field(default="", validation_alias="BEDROCK_ENDPOINT_URL")
    max_tokens: int = Field(default=600, ge=64, le=8192, validation_alias="BEDROCK_MAX_TOKENS")
    timeout: Duration = Field(default=timedelta(seconds=30), validation_alias="BEDROCK_TIMEOUT")
    rpm: int = Field(default=40, ge=1, le=100_000, validation_alias="BEDROCK_RPM")
    evidence_tokens: int = Field(
        default=6000, ge=500, le=100_000, validation_alias="BEDROCK_EVIDENCE_TOKENS"
    )

    @field_validator("model_id", "fallback_model_id", "region", "endpoint_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than 0s")
        return value

    @property
    def timeout_s(self) -> float:
        return self.timeout.total_seconds()

    def problems(self) -> list[str]:
        """What stops this configuration from working, one line per variable."""
        found = []
        if not self.model_id:
            found.append("BEDROCK_MODEL_ID: required when BOT_RCA=bedrock")
        if self.fallback_model_id and self.fallback_model_id == self.model_id:
            found.append("BEDROCK_FALLBACK_MODEL_ID: must differ from BEDROCK_MODEL_ID")
        if self.endpoint_url and not self.endpoint_url.startswith(("https://", "http://")):
            found.append(
                f"BEDROCK_ENDPOINT_URL: must be an http(s) URL (got {self.endpoint_url!r})"
            )
        return found


def load_bedrock_settings(**overrides: Any) -> BedrockSettings:
    """Settings from the environment (``overrides`` by field name win); ConfigError if unusable."""
    return load_checked(BedrockSettings, ENV_NAMES, BedrockSettings.problems, **overrides)


__all__ = ["ENV_NAMES", "BedrockSettings", "load_bedrock_settings"]
