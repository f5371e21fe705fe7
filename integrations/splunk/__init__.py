"""Splunk as the search backend: detection queries run on splunkd through splunk-sdk."""

from integrations.splunk.backend import SearchCounters, SearchMode, SplunkSearchBackend
from integrations.splunk.errors import (
    SplunkAuthError,
    SplunkRefused,
    SplunkSearchError,
    SplunkTimeout,
    SplunkTlsError,
    SplunkUnavailable,
    SplunkUnreachable,
)
from integrations.splunk.links import search_text
from integrations.splunk.settings import SplunkSettings, load_splunk_settings

__all__ = [
    "SearchCounters",
    "SearchMode",
    "SplunkAuthError",
    "SplunkRefused",
    "SplunkSearchBackend",
    "SplunkSearchError",
    "SplunkSettings",
    "SplunkTimeout",
    "SplunkTlsError",
    "SplunkUnavailable",
    "SplunkUnreachable",
    "load_splunk_settings",
    "search_text",
]
