"""Splunk as the search backend: detection queries run on splunkd through splunk-sdk.

Each name below is imported on first use (:func:`integrations.lazy_exports`): the settings,
links and the push webhook do not load splunk-sdk."""

from typing import TYPE_CHECKING

from integrations import lazy_exports

if TYPE_CHECKING:
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
else:
    __getattr__ = lazy_exports(
        __name__,
        {
            "SearchCounters": "backend",
            "SearchMode": "backend",
            "SplunkSearchBackend": "backend",
            "SplunkAuthError": "errors",
            "SplunkRefused": "errors",
            "SplunkSearchError": "errors",
            "SplunkTimeout": "errors",
            "SplunkTlsError": "errors",
            "SplunkUnavailable": "errors",
            "SplunkUnreachable": "errors",
            "search_text": "links",
            "SplunkSettings": "settings",
            "load_splunk_settings": "settings",
        },
    )

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
