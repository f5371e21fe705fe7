"""The embedded default: events in a SQLite file, searched with a subset of Splunk's SPL."""

from detectors.spl.engine import Pipeline, Prefilter, parse, run
from detectors.spl.nodes import SplError
from integrations.local.backend import LocalSearchBackend
from integrations.local.events import Event, EventStore

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
