"""Search's parts for the composition root: the rules, the backend they search, the embedded
event store and its generator when logs are kept locally, and the shared searches (feeds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.ports import Clock, SearchBackend
from bot.settings import Settings
from detectors.feeds import FeedSet
from detectors.fields import FieldExtractor, load_extractor
from detectors.model import Rule
from detectors.rules import load_rules
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.generator import Generator

if TYPE_CHECKING:
    from integrations.splunk import SplunkSettings


@dataclass(frozen=True, slots=True)
class SearchParts:
    backend: SearchBackend
    extractor: FieldExtractor
    #: the embedded log store (None when another backend is handed in or Splunk is set up)
    event_store: EventStore | None = None
    #: answers ``simulate`` even when its background scenarios are off
    generator: Generator | None = None
    #: rules sharing one search (None: BOT_SHARED_SEARCHES is off)
    feeds: FeedSet | None = None

    @property
    def embedded(self) -> bool:
        """The embedded default: rules search local logs."""
        return self.event_store is not None


def rules_from_settings(settings: Settings) -> list[Rule]:
    """The shipped rules (unless turned off) and those in ``BOT_RULES_PATH``; with the local
    backend, each query must be SPL it can run. Raises RuleFileError listing every problem."""
    return load_rules(
        settings.rule_paths,
        include_shipped=settings.shipped_rules,
        local_spl=settings.search_backend == "local",
    )


def from_settings(
    settings: Settings,
    *,
    splunk: SplunkSettings | None,
    rules: Sequence[Rule],
    clock: Clock,
    backend: SearchBackend | None = None,
) -> SearchParts:
    """``backend`` stands in for the configured one (tests); otherwise Splunk when set up, else
    the embedded store. A field extraction file with errors raises ExtractionFileError, each
    problem as ``file:line: message``."""
    if backend is None and splunk is not None:
        from integrations.splunk import SplunkSearchBackend  # splunk-sdk: only when set up

        backend = SplunkSearchBackend(splunk, clock=clock)
    extractor = load_extractor(settings.field_extraction_paths)
    event_store: EventStore | None = None
    if backend is None:
        event_store = EventStore(settings.local_events_path)
        backend = LocalSearchBackend(event_store, extractor)
    generator = (
        Generator(event_store, index_lag=settings.generator_index_lag)
        if event_store is not None
        else None
    )
    feeds = (
        FeedSet(
            backend,
            rules,
            max_index_lag=settings.max_index_lag,
            late_sweep=settings.late_sweep,
            max_events=settings.feed_max_events,
            extractor=extractor,
        )
        if settings.shared_searches
        else None
    )
    return SearchParts(backend, extractor, event_store, generator, feeds)
