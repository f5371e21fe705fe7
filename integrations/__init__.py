"""Integrations: the concrete search backends, chat surfaces and RCA engines behind bot.ports.

A package whose integration pulls in a large library (Slack's and Teams' SDKs, splunk-sdk,
pagerduty, boto3) names its exports with :func:`lazy_exports`: ``from integrations.slack import
SlackSettings`` then imports ``integrations.slack.settings`` only, and the SDK is imported when
the configuration builds the integration, not when the bot starts.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562): ``where`` maps each exported name to the
    submodule (relative to ``package``) it is imported from on first use, as ``module`` or
    ``module:name`` when it is called otherwise there."""

    def __getattr__(name: str) -> Any:
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = found.partition(":")
        value = getattr(importlib.import_module(f"{package}.{module}"), attribute or name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    return __getattr__
