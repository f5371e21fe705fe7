"""The shape of a field extraction: which sourcetypes it serves, what it reads, what it names.

An extraction is a pure function from an event's text to the fields it finds (values are
strings; a field with several values holds them comma-joined, as Splunk's REST output reads).
Extractions are looked up by sourcetype, case-insensitively, with ``*`` wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

Fields = dict[str, str]
ExtractFn = Callable[[str], Fields]


@dataclass(frozen=True, slots=True)
class Pattern:
    """One regular expression with named groups, tried on an event's text.

    ``needle`` is a substring the text must hold for the regex to be worth trying (a fast
    reject); ``constants`` are fields set when the regex matches (``action=failure``).
    """

    regex: re.Pattern[str]
    needle: str | None = None
    constants: Mapping[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.regex.groupindex) | frozenset(self.constants)

    def apply(self, text: str, found: Fields) -> bool:
        """Add what the regex finds to ``found`` (fields already there win); True on a match."""
        if self.needle is not None and self.needle not in text:
            return False
        m = self.regex.search(text)
        if m is None:
            return False
        for name, value in m.groupdict().items():
            if value is not None and name not in found:
                found[name] = value
        for name, value in self.constants.items():
            found.setdefault(name, value)
        return True


def pattern(regex: str, needle: str | None = None, **constants: str) -> Pattern:
    """A :class:`Pattern` from regex text (Python syntax; ``(?<name>...)`` is accepted too)."""
    return Pattern(re.compile(python_regex(regex)), needle, dict(constants))


_PCRE_GROUP_RE = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z_])")


def python_regex(text: str) -> str:
    """PCRE's ``(?<name>...)`` named groups written the Python way, ``(?P<name>...)``."""
    return _PCRE_GROUP_RE.sub("(?P<", text)


def apply_all(patterns: tuple[Pattern, ...], text: str, found: Fields) -> None:
    for p in patterns:
        p.apply(text, found)


def apply_first(patterns: tuple[Pattern, ...], text: str, found: Fields) -> bool:
    return any(p.apply(text, found) for p in patterns)


@dataclass(frozen=True, slots=True)
class SourcetypeExtraction:
    """Extractions for the sourcetypes matching ``sourcetypes`` (``*`` wildcards).

    ``extract`` is a pure function of ``_raw``; ``fields`` names every field it can produce.
    ``open_ended`` is True when it may produce fields not known in advance (JSON keys).
    """

    name: str
    sourcetypes: tuple[str, ...]
    extract: ExtractFn
    fields: frozenset[str]
    open_ended: bool = False

    def serves(self, sourcetype: str) -> bool:
        return any(sourcetype_matches(p, sourcetype) for p in self.sourcetypes)


@lru_cache(maxsize=1024)
def _wildcard(pattern_text: str) -> re.Pattern[str]:
    body = ".*".join(re.escape(part) for part in pattern_text.split("*"))
    return re.compile(body, re.IGNORECASE | re.DOTALL)


def sourcetype_matches(pattern_text: str, sourcetype: str) -> bool:
    """``WinEventLog:*`` matches ``WinEventLog:Security`` (case-insensitive)."""
    if "*" not in pattern_text:
        return pattern_text.lower() == sourcetype.lower()
    return _wildcard(pattern_text).fullmatch(sourcetype) is not None


IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}", re.ASCII)
IPV6_RE = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+", re.ASCII)


def is_ip(text: str) -> bool:
    return IPV4_RE.fullmatch(text) is not None or (
        ":" in text and IPV6_RE.fullmatch(text) is not None
    )


def add_src_ip(found: Fields, key: str = "src") -> None:
    """``src_ip`` when ``src`` (or ``key``) is an IP address, as CIM names it."""
    value = found.get(key)
    if value and "src_ip" not in found and is_ip(value):
        found["src_ip"] = value
