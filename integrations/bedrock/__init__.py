"""Root-cause analysis by a model on Amazon Bedrock, falling back to another engine."""

from integrations.bedrock.answer import Answer, RejectReason
from integrations.bedrock.engine import BedrockRcaEngine, BedrockStats, make_client
from integrations.bedrock.settings import BedrockSettings, load_bedrock_settings

__all__ = [
    "Answer",
    "BedrockRcaEngine",
    "BedrockSettings",
    "BedrockStats",
    "RejectReason",
    "load_bedrock_settings",
    "make_client",
]
