"""Logging: text or JSON lines to stdout, context from contextvars, secrets redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

from bot.redaction import RedactingFilter, Redactor

#: bound by whoever handles an incident, a rule run or a request
context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "bot_log_context", default=None
)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.bot_context = context.get() or {}
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "bot_context", {}),
        }
        if record.exc_text:
            payload["error"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = getattr(record, "bot_context", {})
        return line + "".join(f" {k}={v}" for k, v in extra.items())


def configure(level: str, fmt: str, redactor: Redactor) -> None:
    """Replace the root handlers with one stdout handler that redacts every record."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter())
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler.executors.default", "apscheduler.scheduler", "httpx", "drain3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
