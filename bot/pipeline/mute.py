"""Mute: whether an incident is notified (and paged).

Silences (label matchers for a time), maintenance windows (recurring silences) and inhibition
(an active incident mutes lower ones that share labels) share one :class:`Muter`, as
Alertmanager's silencer and inhibitor share its ``Muter`` interface. A run builds one Muter:
the silences and windows active at that moment, and the inhibition index over the active
incidents; checking one incident is then a few matcher checks and one look-up per inhibit rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.pipeline.inhibit import Inhibitor, Source
from bot.pipeline.maintenance import OpenWindow
from bot.pipeline.matchers import Matcher, matches_all, parse_matchers


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


def muting_silence(
    silences: Sequence[Silence], labels: Mapping[str, str], now: datetime
) -> Silence | None:
    for silence in silences:
        if silence.active(now) and silence.matches(labels):
            return silence
    return None


@dataclass(frozen=True, slots=True)
class Mute:
    """Why an incident is muted: ``muted_by`` (stored on the incident) and the timeline text."""

    muted_by: str
    note: str


class Muter:
    """Silences, open maintenance windows and inhibition, checked in that order."""

    def __init__(
        self,
        silences: Sequence[Silence] = (),
        windows: Sequence[OpenWindow] = (),
        inhibitor: Inhibitor | None = None,
    ) -> None:
        self.silences = tuple(silences)
        self.windows = tuple(windows)
        self.inhibitor = inhibitor if inhibitor is not None else Inhibitor(())

    @property
    def inhibits(self) -> bool:
        return bool(self.inhibitor)

    def observe(self, sources: Iterable[Source]) -> None:
        """Incidents of the current run become inhibition sources too."""
        self.inhibitor.observe(sources)

    def mute(self, labels: Mapping[str, str], now: datetime, incident_id: int = 0) -> Mute | None:
        silence = muting_silence(self.silences, labels, now)
        if silence is not None:
            return Mute(
                f"silence:{silence.id}",
                f"notifications muted by silence {silence.id} "
                f"({', '.join(map(str, silence.matchers))}): {silence.reason}",
            )
        for window in self.windows:
            if window.start <= now < window.end and window.window.matches(labels):
                reason = f": {window.window.reason}" if window.window.reason else ""
                return Mute(window.muted_by, f"notifications muted: {window.note}{reason}")
        inhibition = self.inhibitor.mutes(labels, incident_id)
        if inhibition is not None:
            return Mute(inhibition.muted_by, f"notifications muted: {inhibition.note}")
        return None


__all__ = ["Matcher", "Mute", "Muter", "Silence", "muting_silence", "parse_matchers"]
