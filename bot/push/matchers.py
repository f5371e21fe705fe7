"""Label matchers as Alertmanager writes them: ``name="value"``, ``name!="value"``,
``name=~"regex"``, ``name!~"regex"`` (quotes optional). Regexes match the whole value."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import PermanentError

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*|"[^"]*")\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


class MatchType(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    name: str
    kind: MatchType
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.kind is MatchType.EQUAL:
            return got == self.value
        if self.kind is MatchType.NOT_EQUAL:
            return got != self.value
        assert self.pattern is not None
        hit = self.pattern.fullmatch(got) is not None
        return hit if self.kind is MatchType.REGEX else not hit

    @property
    def is_regex(self) -> bool:
        return self.kind in (MatchType.REGEX, MatchType.NOT_REGEX)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.kind.value}"{escaped}"'


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body = text[1:-1]
        out, i = [], 0
        while i < len(body):
            char = body[i]
            if char == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(char)
            i += 1
        return "".join(out)
    return text


def parse_matcher(text: str) -> LabelMatcher:
    """One matcher; raises PermanentError naming the text and what is wrong."""
    found = _MATCHER.match(text)
    if found is None:
        raise PermanentError(
            f'bad matcher {text!r}: use name="value", name!="value", name=~"regex" or name!~"regex"'
        )
    name, op, raw = found.groups()
    kind = MatchType(op)
    value = _unquote(raw)
    pattern = None
    if kind in (MatchType.REGEX, MatchType.NOT_REGEX):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise PermanentError(f"bad matcher {text!r}: invalid regex: {exc}") from None
    return LabelMatcher(_unquote(name), kind, value, pattern)


def parse_matchers(texts: Sequence[str]) -> tuple[LabelMatcher, ...]:
    """Each text is one matcher, or several in braces: ``{a="b", c=~"d"}``."""
    out: list[LabelMatcher] = []
    for text in texts:
        stripped = text.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            out.extend(parse_matcher(part) for part in _split(stripped[1:-1]) if part.strip())
        else:
            out.append(parse_matcher(stripped))
    return tuple(out)


def _split(body: str) -> list[str]:
    """Split on commas outside quotes."""
    parts, current, quoted, escaped = [], [], False, False
    for char in body:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
            current.append(char)
            continue
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def matches_all(matchers: Sequence[LabelMatcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
