"""The ``bedrock-runtime`` client and how its errors are read: which are worth another try,
which call for the fallback model, what status and ``Retry-After`` an answer carried."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from integrations.bedrock.settings import BedrockSettings

THREADS = 16
RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
    }
)
"""Worth another try on the same model (after a pause)."""
MODEL_REFUSED = frozenset(
    {
        "ValidationException",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ModelErrorException",
    }
)
"""The model is unavailable here or refuses the request: worth one try on the fallback model."""


def make_client(settings: BedrockSettings) -> Any:
    """A ``bedrock-runtime`` client with our timeouts and no SDK retries (we retry ourselves)."""
    config = Config(
        read_timeout=settings.timeout_s,
        connect_timeout=min(5.0, settings.timeout_s),
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=THREADS,
    )
    return boto3.client(
        "bedrock-runtime",
        region_name=settings.region or None,
        endpoint_url=settings.endpoint_url or None,
        config=config,
    )


def status_of(exc: ClientError, code: str) -> str:
    """``HTTP 429 (ThrottlingException)``, or ``HTTP 503`` when there is no error code."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    said = f"HTTP {status}" if status else "an error"
    return said if code == str(status) else f"{said} ({code})"


def retry_after_of(exc: ClientError) -> float:
    """The seconds a throttled or unavailable answer asked to wait (``Retry-After``), or 0."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    value = headers.get("retry-after") or headers.get("Retry-After") or ""
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return 0.0


__all__ = [
    "MODEL_REFUSED",
    "RETRYABLE",
    "THREADS",
    "make_client",
    "retry_after_of",
    "status_of",
]
