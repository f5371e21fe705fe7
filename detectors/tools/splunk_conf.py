"""A reader for Splunk ``.conf`` files (``savedsearches.conf`` and friends).

The format, as Splunk reads it:

* ``[stanza name]`` starts a stanza; the name is everything between the first ``[`` and the
  last ``]`` (names may hold spaces, ``:``, ``=``, ``#`` and brackets);
* ``key = value`` sets a key; the value is everything after the first ``=``, trimmed (a ``#``
  inside a value is part of it: there are no trailing comments);
* a line ending in a backslash continues on the next line; the value keeps the line break;
* lines starting with ``#`` are comments;
* settings before the first stanza, and in ``[default]``, apply to every stanza that does not
  set them itself; a stanza named twice is one stanza, the later value of a key winning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Stanza:
    """One stanza: its name, the line of its header, its settings and the line of each."""

    name: str
    line: int
    values: Mapping[str, str] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)


@dataclass(frozen=True, slots=True)
class ConfProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(first line number, text)`` with backslash continuations joined by a line break."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, "\n".join(pending)
        pending = []
    if pending:
        yield start, "\n".join(pending)


def parse_conf(text: str) -> tuple[list[Stanza], list[ConfProblem]]:
    """The stanzas of ``text`` (``[default]`` merged into each, in file order) and the lines
    that are neither a stanza header, a setting, a comment nor blank."""
    order: list[str] = []
    headers: dict[str, int] = {}
    values: dict[str, dict[str, str]] = {DEFAULT: {}}
    lines: dict[str, dict[str, int]] = {DEFAULT: {}}
    problems: list[ConfProblem] = []
    current = DEFAULT
    for number, line in _logical_lines(text.removeprefix("\ufeff")):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]") and "\n" not in stripped:
            current = stripped[1 : stripped.rindex("]")].strip() or DEFAULT
            if current not in values:
                values[current], lines[current] = {}, {}
                headers[current] = number
                if current != DEFAULT:
                    order.append(current)
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(ConfProblem(number, f"not a 'key = value' setting: {stripped[:60]!r}"))
            continue
        values[current][key] = value.strip()
        lines[current][key] = number
    defaults = values[DEFAULT]
    stanzas = [
        Stanza(
            name=name,
            line=headers[name],
            values={**defaults, **values[name]},
            lines={**lines[DEFAULT], **lines[name]},
        )
        for name in order
    ]
    return stanzas, problems
