"""Label matchers, the one syntax silences, maintenance windows and inhibit rules share."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def parse_matchers(texts: Sequence[str], what: str = "a silence") -> tuple[Matcher, ...]:
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
        raise PermanentError(f"{what} needs at least one matcher, for example service=checkout")
    return tuple(out)


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


__all__ = ["Matcher", "matches_all", "parse_matchers"]
