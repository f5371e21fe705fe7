"""Where the rule tools search: events from a file, the local event file, or Splunk.

A JSON-lines file holds one event per line::

    {"time": "2026-11-22T10:00:00Z", "raw": "...", "index": "web", "sourcetype": "nginx:access",
     "host": "web-1", "fields": {"status": "503"}}

``time`` is ISO 8601 (UTC when it names no zone) or epoch seconds; only ``time`` and ``raw`` are
required. With ``--sourcetype`` the file is a plain log instead (see
:mod:`detectors.tools.logfiles`). The events go into a throw-away in-memory store searched by the
local engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.errors import ConfigError
from bot.ports import SearchBackend
from detectors.fields import load_extractor
from detectors.spl.time import resolve_time
from detectors.tools.logfiles import LogOptions, is_plain_log, read_log
from integrations.local import Event, EventStore, LocalSearchBackend

MAX_REPORTED = 20
_EPOCH = re.compile(r"\d+(?:\.\d+)?")


def parse_time(text: str, now: datetime, name: str = "time") -> datetime:
    """``text`` as an instant: ISO 8601, epoch seconds, ``now`` or relative (``-24h``,
    ``-1d@d``), counted back from ``now``. Raises ConfigError naming ``name``."""
    try:
        return resolve_time(text, now)
    except ValueError:
        raise ConfigError(
            f"{name}: {text!r} is not a time: use ISO 8601 (2026-11-22T10:00:00Z), epoch "
            "seconds, now, or a relative time like -24h or -7d"
        ) from None


class EventLine(BaseModel):
    """One line of an events file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: datetime
    raw: str
    index: str = "main"
    sourcetype: str = ""
    source: str = ""
    host: str = ""
    fields: dict[str, str | int | float | bool] = {}

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> datetime:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("use ISO 8601 text or epoch seconds")
        try:
            if isinstance(value, str) and not _EPOCH.fullmatch(value.strip()):
                moment = datetime.fromisoformat(value.strip())
                return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return datetime.fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"not a time: {value!r}") from None

    def event(self) -> Event:
        fields = {key: _text(value) for key, value in self.fields.items()}
        return Event(
            self.time,
            self.raw,
            index=self.index,
            sourcetype=self.sourcetype,
            source=self.source,
            host=self.host,
            fields=fields,
        )


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_events(path: Path) -> list[Event]:
    """The events of a JSON-lines file; raises ConfigError listing ``file:line: problem``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    events: list[Event] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(EventLine.model_validate(json.loads(line)).event())
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON: {exc.msg}")
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(part) for part in error["loc"]) or "line"
                message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(
                    f"{path}:{number}: {where}: {message.removeprefix('Value error, ')}"
                )
    if problems:
        more = len(problems) - MAX_REPORTED
        shown = problems[:MAX_REPORTED] + ([f"... and {more} more"] if more > 0 else [])
        raise ConfigError("\n".join(shown))
    return events


@dataclass(frozen=True, slots=True)
class DataChoice:
    """What to search: ``data`` (a JSON-lines file, or a plain log file read as ``log`` says),
    ``splunk``, or else the local event file."""

    data: Path | None = None
    splunk: bool = False
    local_events: Path = Path("./data/events.db")
    log: LogOptions | None = None
    extractions: tuple[Path, ...] = ()  # a user's field extractions (BOT_FIELD_EXTRACTIONS_PATH)

    @property
    def local_spl(self) -> bool:
        """Whether queries run on the local engine (and so must be in its SPL subset)."""
        return not self.splunk


@dataclass(frozen=True, slots=True)
class Source:
    backend: SearchBackend
    description: str


@asynccontextmanager
async def open_source(choice: DataChoice) -> AsyncIterator[Source]:
    """The backend to search, opened for the block and closed after it. Never creates files."""
    if choice.splunk:
        backend = _splunk_backend()
        try:
            yield Source(backend, "Splunk")
        finally:
            await _close(backend)
        return
    extractor = load_extractor(choice.extractions)
    if choice.data is not None:
        events = _data_events(choice.data, choice.log)
        with EventStore(":memory:") as store:
            store.add(events)
            yield Source(
                LocalSearchBackend(store, extractor), f"{len(events)} events from {choice.data}"
            )
        return
    if not choice.local_events.is_file():
        raise ConfigError(
            f"no event file at {choice.local_events} (BOT_LOCAL_EVENTS_PATH): run the bot to "
            "generate events, or pass --data events.jsonl or --splunk"
        )
    with EventStore(choice.local_events) as store:
        yield Source(
            LocalSearchBackend(store, extractor), f"the local event file {choice.local_events}"
        )


def _data_events(path: Path, log: LogOptions | None) -> list[Event]:
    if log is not None:
        return read_log(path, log)
    if path.is_file() and is_plain_log(path):
        raise ConfigError(
            f"{path}: not JSON lines of events; for a plain log file name its sourcetype, e.g. "
            "--sourcetype linux_secure --index os (and --host, --year when syslog omits them)"
        )
    return read_events(path)


def _splunk_backend() -> SearchBackend:
    try:
        from integrations.splunk import SplunkSearchBackend, load_splunk_settings
    except ImportError:
        raise ConfigError(
            "--splunk: this version has no Splunk backend (integrations.splunk); "
            "search the local event file or pass --data events.jsonl"
        ) from None
    backend: SearchBackend = SplunkSearchBackend(load_splunk_settings())
    return backend


async def _close(backend: object) -> None:
    for name in ("aclose", "close"):
        closer = getattr(backend, name, None)
        if callable(closer):
            result = closer()
            if hasattr(result, "__await__"):
                await result
            return
