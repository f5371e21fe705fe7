"""Removes secrets (and, in strict mode, personal and network identifiers) from text.

Every evidence line passes through a :class:`Redactor` before it is stored for display, logged,
or handed to an RCA engine or a chat surface. A removed value is replaced by a typed marker such
as ``[REDACTED:aws-access-key]`` so a reader still knows what was there; for ``key=value`` pairs,
URLs and headers only the value goes, the key stays.

Modes:

* ``balanced``: credentials (cloud keys, tokens, JWTs, passwords, private keys, URL credentials),
  payment card numbers (Luhn-checked, with spaces or dashes too) and the configured secret
  values;
* ``strict``: the same plus email addresses, IPv4/IPv6 addresses, host names, IBANs
  (checksum-checked) and national ids (US SSN, UK NINO); see :mod:`bot.redaction_numbers`;
* ``off``: text passes through unchanged.

:class:`RedactingFilter` applies a redactor to log records, so configured secrets never reach a
log handler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import ConfigError
from bot.redaction_numbers import (
    CARD,
    IBAN,
    NATIONAL_ID,
    redact_cards,
    redact_ibans,
    redact_national_ids,
)

MIN_SECRET_LENGTH = 4
"""Configured secrets shorter than this are ignored: redacting them would shred ordinary text."""

_MARKER_PREFIX = "[REDACTED:"


class RedactionMode(StrEnum):
    STRICT = "strict"
    BALANCED = "balanced"
    OFF = "off"


def marker(kind: str) -> str:
    """The text that replaces a removed value of the given kind."""
    return f"{_MARKER_PREFIX}{kind}]"


@dataclass(frozen=True, slots=True)
class _Rule:
    """One substitution; skipped cheaply unless one of ``triggers`` occurs in the text.

    Triggers are compared with the lower-cased text when ``folded``; an empty ``triggers`` means
    the rule always runs.
    """

    name: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]
    triggers: tuple[str, ...] = ()
    folded: bool = False


# --- balanced ---------------------------------------------------------------------------------

_PEM = _Rule(
    "private-key",
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
        r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",  # a cut-off block goes to the end
        re.DOTALL,
    ),
    marker("private-key"),
    ("PRIVATE KEY",),
)

_SLACK_WEBHOOK = _Rule(
    "slack-webhook",
    re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/\-]+"),
    r"\g<1>" + marker("slack-webhook"),
    ("hooks.slack.com",),
)

_SLACK_TOKEN = _Rule(
    "slack-token",
    re.compile(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9\-]{8,}"),
    marker("slack-token"),
    ("xox", "xapp-"),
)

_GITHUB_TOKEN = _Rule(
    "github-token",
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    marker("github-token"),
    ("gh", "github_pat_"),
)

_AWS_ACCESS_KEY = _Rule(
    "aws-access-key",
    re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    marker("aws-access-key"),
    ("AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA"),
)

_AWS_SECRET_KEY = _Rule(
    "aws-secret-key",
    re.compile(
        r"""((?:aws_?)?secret(?:_?(?:access_?)?key)?["']?\s*[:=]?\s*["']?)"""
        r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
        re.IGNORECASE,
    ),
    r"\g<1>" + marker("aws-secret-key"),
    ("secret",),
    folded=True,
)

_JWT = _Rule(
    "jwt",
    re.compile(r"\beyJ[A-Za-z0-9_\-]{7,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
    marker("jwt"),
    ("eyJ",),
)


def _auth_kind(scheme: str | None) -> str:
    scheme = (scheme or "").lower()
    if scheme == "bearer":
        return "bearer-token"
    if scheme == "basic":
        return "basic-auth"
    return "credentials"


_AUTH_HEADER = _Rule(
    "authorization",
    re.compile(
        r"""(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)"""
        r"(?>(?:(bearer|basic|token|digest|negotiate|ntlm|apikey)\s+)?)"
        r"""(?!\[REDACTED:)[^\s"',;]+""",
        re.IGNORECASE,
    ),
    lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}{marker(_auth_kind(m[2]))}",
    ("authorization",),
    folded=True,
)

_BEARER = _Rule(
    "bearer-token",
    re.compile(
        r"\b(bearer\s+)"
        r"(?:(?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{12,}|[A-Za-z0-9\-._~+/]{24,})=*",
        re.IGNORECASE,
    ),
    r"\g<1>" + marker("bearer-token"),
    ("bearer",),
    folded=True,
)

_URL_CREDENTIALS = _Rule(
    "url-password",
    re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s\"']*):(?!\[REDACTED:)[^@\s/\"']+@"),
    r"\g<1>:" + marker("password") + "@",
    ("://",),
)

_SECRET_KEYS = (
    r"password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey"
    r"|access[_\-]?key|secret[_\-]?key|private[_\-]?key"
)
_KEY_VALUE = re.compile(
    rf"""(?P<key>(?P<q>["']?)(?<![\w.\-])[\w.\-]*?(?P<word>{_SECRET_KEYS})(?P=q))"""
    # whitespace after the separator is skipped unless what follows is the next ``key=value``
    r"""(?P<sep>\s*[:=](?:\s+(?![A-Za-z_][\w.\-]*=[^=\s]))?)"""
    r"""(?!["']?\[REDACTED:)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&"'}\]\)]+)""",
    re.IGNORECASE,
)
_KEY_VALUE_TRIGGERS = ("pass", "pwd", "secret", "token", "key")

# --- strict -----------------------------------------------------------------------------------

_EMAIL = _Rule(
    "email",
    re.compile(
        r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"
    ),
    marker("email"),
    ("@",),
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"(?:::(?:[fF]{{4}}(?::0{{1,4}})?:)?{_IPV4}"
    rf"|(?:{_H}:){{1,4}}:{_IPV4}"
    rf"|(?:{_H}:){{7}}{_H}"
    rf"|(?:{_H}:){{1,6}}:{_H}"
    rf"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
    rf"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
    rf"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}"
    rf"|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    rf"|{_H}:(?::{_H}){{1,6}}"
    rf"|(?:{_H}:){{1,7}}:"
    rf"|:(?::{_H}){{1,7}}"
    r"|::)"
)

_IPV6_RULE = _Rule(
    "ipv6",
    re.compile(rf"(?<![0-9A-Za-z:.\]]){_IPV6}(?![0-9A-Za-z:]|\.\d)"),
    marker("ip"),
    ("::", ":"),
)

_IPV4_RULE = _Rule(
    "ipv4",
    re.compile(rf"(?<![\w.]){_IPV4}(?![\w]|\.\d)"),
    marker("ip"),
    (".",),
)

_TLDS = (
    "com|net|org|edu|gov|mil|int|io|co|ai|dev|app|cloud|info|biz|us|uk|de|fr|nl|eu|ca|au|jp"
    "|cn|ru|in|br|ch|se|no|es|it|pl"
)
_INTERNAL_SUFFIXES = "local|localdomain|internal|corp|lan|intra|intranet|home\\.arpa|priv"
_HOSTNAME = _Rule(
    "hostname",
    re.compile(
        r"(?<![\w.\-:])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
        rf"(?:{_TLDS}|{_INTERNAL_SUFFIXES})(?![\w\-]|\.[\w\-])",
        re.IGNORECASE,
    ),
    marker("host"),
    (".",),
)

_HOST_KEY_VALUE = _Rule(
    "host-field",
    re.compile(
        r"""((?<![\w.\-])["']?"""
        r"(?:(?:src|dst|dest|source|target|remote|client|server|dvc)_?)?"
        r"(?:host|host_?name|computer_?name|workstation_?name)"
        r"""["']?(?:\s*=\s*|\s*:\s+|(?<=["']):)["']?)"""
        r"""(?!\[REDACTED:)[^\s,;&"'}\]\)]+""",
        re.IGNORECASE,
    ),
    r"\g<1>" + marker("host"),
    ("host", "name"),
    folded=True,
)

_BALANCED_RULES: tuple[_Rule, ...] = (
    _PEM,
    _SLACK_WEBHOOK,
    _SLACK_TOKEN,
    _GITHUB_TOKEN,
    _AWS_ACCESS_KEY,
    _AWS_SECRET_KEY,
    _JWT,
    _AUTH_HEADER,
    _BEARER,
    _URL_CREDENTIALS,
)
_STRICT_RULES: tuple[_Rule, ...] = (
    _EMAIL,
    _HOST_KEY_VALUE,
    _IPV6_RULE,
    _IPV4_RULE,
    _HOSTNAME,
)


# one scan that tells whether any balanced rule could match: most log lines carry no secret
_ANY_EXACT = re.compile(
    "|".join(re.escape(t) for r in _BALANCED_RULES if not r.folded for t in r.triggers)
)
_ANY_FOLDED = re.compile(
    "|".join(
        re.escape(t)
        for t in (
            *(t for r in _BALANCED_RULES if r.folded for t in r.triggers),
            *_KEY_VALUE_TRIGGERS,
        )
    )
)
assert all(r.triggers for r in _BALANCED_RULES), "the fast path needs a trigger on every rule"


def _secret_kind(word: str) -> str:
    word = word.lower().replace("_", "-")
    if word.startswith("pass") or word == "pwd":
        return "password"
    if word in ("apikey", "api-key"):
        return "api-key"
    if word == "token":
        return "token"
    if word.endswith("key"):
        return word if word == "private-key" else "secret-key"
    return "secret"


def _key_value_replacement(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{match['sep']}{quote}{marker(_secret_kind(match['word']))}{quote}"


def _apply(rule: _Rule, text: str, folded: str) -> tuple[str, str]:
    """Run one rule; returns the new text and its lower-cased form (recomputed only on change)."""
    if rule.triggers:
        haystack = folded if rule.folded else text
        if not any(t in haystack for t in rule.triggers):
            return text, folded
    new = rule.pattern.sub(rule.replacement, text)
    if new == text:
        return text, folded
    return new, new.lower()


class Redactor:
    """Redacts one text at a time; thread-safe and cheap to share (patterns are compiled once)."""

    __slots__ = ("_extra", "_mode", "_strict")

    def __init__(self, mode: RedactionMode | str, extra_secrets: Iterable[str] = ()) -> None:
        try:
            self._mode = RedactionMode(mode)
        except ValueError as exc:
            choices = ", ".join(m.value for m in RedactionMode)
            raise ConfigError(f"unknown redaction mode {mode!r} (use one of: {choices})") from exc
        secrets = sorted(
            {s for s in extra_secrets if len(s.strip()) >= MIN_SECRET_LENGTH},
            key=lambda s: (-len(s), s),
        )
        self._extra = re.compile("|".join(map(re.escape, secrets))) if secrets else None
        self._strict = self._mode is RedactionMode.STRICT

    @property
    def mode(self) -> RedactionMode:
        return self._mode

    def redact(self, text: str) -> str:
        """``text`` with every secret (and in strict mode every identifier) replaced by a marker."""
        if self._mode is RedactionMode.OFF or not text:
            return text
        if self._extra is not None:
            text = self._extra.sub(marker("secret"), text)
        folded = text.lower()
        if _ANY_EXACT.search(text) or _ANY_FOLDED.search(folded):
            for rule in _BALANCED_RULES:
                text, folded = _apply(rule, text, folded)
            if any(word in folded for word in _KEY_VALUE_TRIGGERS):
                text = _KEY_VALUE.sub(_key_value_replacement, text)
                folded = text.lower()
        text = redact_cards(text, marker(CARD))
        if self._strict:
            text = redact_national_ids(redact_ibans(text, marker(IBAN)), marker(NATIONAL_ID))
            folded = text.lower()
            for rule in _STRICT_RULES:
                text, folded = _apply(rule, text, folded)
        return text


class RedactingFilter(logging.Filter):
    """Redacts a record's message (with its arguments rendered in) and its exception text.

    Attach it to handlers (handler filters see records from every logger); it always lets the
    record through. After filtering, ``record.msg`` is the redacted rendered message,
    ``record.args`` is empty and the traceback lives only in ``record.exc_text``.
    """

    def __init__(self, redactor: Redactor, name: str = "") -> None:
        super().__init__(name)
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor.mode is RedactionMode.OFF:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg} {record.args!r}"
        record.msg = self.redactor.redact(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


__all__ = ["MIN_SECRET_LENGTH", "RedactingFilter", "RedactionMode", "Redactor", "marker"]
