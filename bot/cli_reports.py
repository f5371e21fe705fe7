"""``run_bot.py incidents export INC-3 --format md|json`` and ``run_bot.py report --since 7d``.

Both read the database directly (``BOT_DATABASE_URL``), so they answer with no bot running.

::

    run_bot.py incidents export INC-3 --format md > INC-3.md
    run_bot.py report --since 7d [--json]
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, TextIO

from bot import postmortem, reports
from bot.errors import PermanentError
from bot.settings import Settings

EXIT_OK = 0


def add_export_command(isub: Any) -> None:
    """``export`` under the ``incidents`` group."""
    export = isub.add_parser("export", help="a postmortem draft from the incident's audit chain")
    export.add_argument("id", help="INC-n")
    export.add_argument("--format", choices=["md", "json"], default="md", help="default: md")


def add_report_command(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="per rule and service: noise, time to acknowledge and resolve, advice"
    )
    report.add_argument("--since", default="7d", help="how far back: 24h, 7d, 30d (default 7d)")
    report.add_argument(
        "--until", help="end of the period, ISO 8601 (default: now): 2026-11-30T00:00:00Z"
    )
    report.add_argument("--json", action="store_true", help="print JSON")


def _engine(settings: Settings) -> Any:
    from bot.store.db import check_connection, make_engine, migrate

    engine = make_engine(settings.database_url)
    check_connection(engine)
    migrate(engine)
    return engine


def run_export(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from bot.api import incident_number
    from bot.ports import SystemClock
    from bot.postmortem_md import to_markdown

    number = incident_number(args.id)
    found = postmortem.build(_engine(settings), number, SystemClock().now())
    if args.format == "json":
        out.write(json.dumps(postmortem.to_json(found), indent=2) + "\n")
    else:
        out.write(to_markdown(found))
    return EXIT_OK


def _until(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PermanentError(f"--until {text!r}: use ISO 8601, like 2026-11-30T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def run_report(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from bot.api_reports import period
    from bot.ports import SystemClock

    span = period(args.since)
    now = _until(args.until) if args.until else SystemClock().now()
    report = reports.build(_engine(settings), now - span, now)
    if args.json:
        out.write(json.dumps(reports.to_json(report), indent=2) + "\n")
    else:
        out.write(reports.to_text(report))
    return EXIT_OK
