"""Mute: silences (label matchers for a time) decide whether an incident is notified."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.errors import PermanentError


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name=value`` (``*`` wildcards allowed) or ``name!=value``."""

    name: str
    value: str
    negate: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        hit = fnmatch.fnmatchcase(labels.get(self.name, "").lower(), self.value.lower())
        return hit != self.negate

    def __str__(self) -> str:
        return f"{self.name}{'!=' if self.negate else '='}{self.value}"


def parse_matchers(texts: Sequence[str]) -> tuple[Matcher, ...]:
    """Parse ``["service=checkout", "host!=web-*"]``; raise PermanentError on bad input."""
    out = []
    for text in texts:
        negate = "!=" in text
        name, sep, value = text.partition("!=" if negate else "=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise PermanentError(f"bad matcher {text!r}: use field=value or field!=value")
        out.append(Matcher(name, value, negate))
    if not out:
        raise PermanentError("a silence needs at least one matcher, for example service=checkout")
    return tuple(out)


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
        return all(m.matches(labels) for m in self.matchers)


def muting_silence(
    silences: Sequence[Silence], labels: Mapping[str, str], now: datetime
) -> Silence | None:
    for silence in silences:
        if silence.active(now) and silence.matches(labels):
            return silence
    return None
