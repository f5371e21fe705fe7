"""Root-cause analysis by a model on Amazon Bedrock, falling back to another engine.

Each name below is imported on first use (:func:`integrations.lazy_exports`): the settings
alone do not load boto3."""

from typing import TYPE_CHECKING

from integrations import lazy_exports

if TYPE_CHECKING:
    from integrations.bedrock.answer import Answer, RejectReason
    from integrations.bedrock.engine import BedrockRcaEngine, BedrockStats, make_client
    from integrations.bedrock.settings import BedrockSettings, load_bedrock_settings
else:
    __getattr__ = lazy_exports(
        __name__,
        {
            "Answer": "answer",
            "RejectReason": "answer",
            "BedrockRcaEngine": "engine",
            "BedrockStats": "engine",
            "make_client": "engine",
            "BedrockSettings": "settings",
            "load_bedrock_settings": "settings",
        },
    )

__all__ = [
    "Answer",
    "BedrockRcaEngine",
    "BedrockSettings",
    "BedrockStats",
    "RejectReason",
    "load_bedrock_settings",
    "make_client",
]
