"""The error tree every module raises and every boundary translates into.

::

    BotError
     ├── ConfigError        bad settings, rule or playbook files: stop or refuse the file
     ├── TransientError     a retry may succeed (timeouts, 429, 5xx); may carry retry_after
     ├── PermanentError     retrying will not help (400, unknown channel, bad query)
     │    └── NotFound      an id that does not exist (incident, rule, silence)
     ├── PolicyViolation    the actor may not do this (role, kill switch)
     └── Conflict           the state does not allow it (illegal transition, stale version)
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose; ``str()`` is a message for people."""


class ConfigError(BotError):
    """Invalid configuration, rule or playbook file."""


class TransientError(BotError):
    """A failure worth retrying; ``retry_after`` (seconds) comes from the peer when it said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(BotError):
    """A failure retrying cannot fix."""


class NotFound(PermanentError):
    """The named object does not exist."""


class PolicyViolation(BotError):
    """The actor is not allowed to do this."""


class Conflict(BotError):
    """The object's state does not allow the request."""


__all__ = [
    "BotError",
    "ConfigError",
    "Conflict",
    "NotFound",
    "PermanentError",
    "PolicyViolation",
    "TransientError",
]
