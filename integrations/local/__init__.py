"""The embedded default: events in a SQLite file, searched with a subset of Splunk's SPL."""

from integrations.local.backend import LocalSearchBackend
from integrations.local.events import Event, EventStore
from integrations.local.spl import Pipeline, Prefilter, parse, run
from integrations.local.spl_ast import SplError

__all__ = [
    "Event",
    "EventStore",
    "LocalSearchBackend",
    "Pipeline",
    "Prefilter",
    "SplError",
    "parse",
    "run",
]
