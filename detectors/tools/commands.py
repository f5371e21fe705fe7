"""The rule tools as ``run_bot.py`` commands: read the arguments' files, run, print, exit code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from bot.domain.durations import parse_duration
from bot.errors import ConfigError
from bot.pipeline.mute import parse_matchers
from bot.ports import SystemClock
from bot.redaction import Redactor
from bot.settings import Settings
from detectors.model import Rule
from detectors.rules import load_rules
from detectors.tools import backtest as replay
from detectors.tools.import_splunk import import_savedsearches
from detectors.tools.logfiles import LogOptions
from detectors.tools.sources import DataChoice, open_source, parse_time
from detectors.tools.test_rule import TryReport, try_rules

EXIT_OK, EXIT_FAILED = 0, 1
LONG_RANGE = 100  # runs; longer replays show a progress bar on a terminal
BAR_WIDTH = 30


def run_test_rule(
    settings: Settings,
    path: Path,
    choice: DataChoice,
    start: str | None,
    end: str | None,
    out: TextIO,
    strict: bool = False,
) -> int:
    """``test-rule``: print what the rules of ``path`` would fire over the range. ``strict``:
    fail when a ``group_by`` field is missing from result rows."""
    now = SystemClock().now()
    until = parse_time(end or "now", now, "--to")
    since = parse_time(start, now, "--from") if start else None
    if since is not None and since >= until:
        raise ConfigError("--to must be after --from")
    rules = _rules(path, choice)
    redactor = _redactor(settings)

    async def go() -> TryReport:
        async with open_source(choice) as source:
            tries = await try_rules(rules, source.backend, since, until, redactor.redact)
            return TryReport(source.description, tuple(tries))

    report = asyncio.run(go())
    print(report.text(), file=out)
    return EXIT_FAILED if report.failed or (strict and report.gaps) else EXIT_OK


def run_backtest(
    settings: Settings,
    path: Path,
    choice: DataChoice,
    start: str,
    end: str,
    silences: Sequence[str],
    resolve_quiet: str,
    out: TextIO,
    err: TextIO,
    strict: bool = False,
) -> int:
    """``backtest``: replay the rules of ``path`` over the range and print how noisy they are.
    ``strict``: fail when a ``group_by`` field is missing from result rows."""
    now = SystemClock().now()
    until = parse_time(end, now, "--to")
    options = replay.Options(
        start=parse_time(start, now, "--from"),
        end=until,
        flap_window=settings.flap_window,
        card_refresh=settings.card_refresh,
        resolve_quiet=_quiet(resolve_quiet),
        silences=tuple(parse_matchers(text.split(",")) for text in silences),
    )
    rules = _rules(path, choice)
    redactor = _redactor(settings)

    async def go() -> replay.Report:
        async with open_source(choice) as source:
            return await replay.backtest(
                rules, source.backend, options, source.description, redactor.redact, _bar(err)
            )

    report = asyncio.run(go())
    print(report.text(), file=out)
    return EXIT_FAILED if report.failed or (strict and report.gaps) else EXIT_OK


def log_options(args: object) -> LogOptions | None:
    """The plain-log options of parsed arguments (``--sourcetype`` …); None without one."""
    sourcetype = getattr(args, "sourcetype", None)
    index, host, year = (getattr(args, name, None) for name in ("index", "host", "year"))
    if not sourcetype:
        if host or year is not None or index not in (None, "main"):
            raise ConfigError("--index, --host and --year describe a log file: add --sourcetype")
        return None
    if getattr(args, "data", None) is None:
        raise ConfigError("--sourcetype describes a log file: name it with --data")
    if year is not None and not 1970 <= year <= 9999:
        raise ConfigError(f"--year: {year} is not a year")
    return LogOptions(str(sourcetype), str(index or "main"), str(host or ""), year)


def run_import_splunk(conf: Path, folder: Path, category: str, out: TextIO) -> int:
    """``import-splunk``: write the convertible alerts of ``conf`` as rule files in ``folder``."""
    report = import_savedsearches(conf, folder, category)
    print(report.text(), file=out)
    complete = report.written == len(report.items) and not report.conf_problems
    return EXIT_OK if complete else EXIT_FAILED


def _rules(path: Path, choice: DataChoice) -> list[Rule]:
    rules = load_rules([path], include_shipped=False, local_spl=choice.local_spl)
    if not rules:
        raise ConfigError(f"{path}: no rules found")
    return rules


def _redactor(settings: Settings) -> Redactor:
    mode = "strict" if settings.redaction_mode == "strict" else "balanced"
    return Redactor(mode, settings.secret_values())


def _quiet(text: str) -> timedelta | None:
    if text.strip().lower() in ("never", "0", "off"):
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--resolve-quiet: {exc}") from None


def _bar(stream: TextIO) -> Callable[[int, int], None]:
    """A progress bar on ``stream`` for replays longer than ``LONG_RANGE`` runs, on a terminal."""
    if not stream.isatty():
        return lambda done, total: None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        if total <= LONG_RANGE or (done % max(1, total // 200) and done != total):
            return
        filled = BAR_WIDTH * done // total
        elapsed = time.monotonic() - started
        stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} runs {elapsed:.0f}s"
        )
        if done == total:
            stream.write("\r" + " " * (BAR_WIDTH + 40) + "\r")
        stream.flush()

    return show
