"""``run_bot.py maintenance list | add | remove``: maintenance windows (recurring silences).

They work on the database directly (``BOT_DATABASE_URL``), so they answer even when no bot is
running; the acting identity is ``cli:<login>`` (or ``--actor``) and needs the responder role to
add or remove. A running bot picks the change up at its next rule run.

::

    run_bot.py maintenance add sunday-patching --days sun --start 02:00 --duration 4h \\
        --timezone Europe/Berlin --match service=db* --reason "OS patches"
    run_bot.py maintenance add nightly-backup --cron "30 1 * * *" --duration 45m --match host=db-1
    run_bot.py maintenance list [--json]
    run_bot.py maintenance remove sunday-patching
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
from typing import Any, TextIO

from pydantic import ValidationError

from bot.errors import PermanentError
from bot.settings import Settings

EXIT_OK = 0
SURFACE = "cli"


def add_maintenance_commands(sub: Any) -> None:
    main = sub.add_parser("maintenance", help="maintenance windows: recurring silences")
    msub = main.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = msub.add_parser("list", help="every window, whether it runs now, its next start")
    lst.add_argument("--json", action="store_true", help="one JSON object per window")
    add = msub.add_parser("add", help="add a window (weekly: --days and --start; or --cron)")
    add.add_argument("name", help="a short name: sunday-patching")
    add.add_argument("--days", default="", help="sun, sat,sun, mon-fri or daily")
    add.add_argument("--start", default="", help="local start time HH:MM")
    add.add_argument("--cron", default="", help="a cron expression instead: '0 2 * * sun'")
    add.add_argument("--duration", required=True, help="how long each time: 4h, 90m")
    add.add_argument("--timezone", default="UTC", help="IANA time zone (default UTC)")
    add.add_argument(
        "--match",
        action="append",
        default=[],
        required=True,
        metavar="FIELD=VALUE",
        help="label matcher, as silences use (repeatable): service=db*, host!=db-9",
    )
    add.add_argument("--include-critical", action="store_true", help="mute critical incidents too")
    add.add_argument("--reason", default="", help="why (shown on muted incidents)")
    add.add_argument("--actor", default="", help="who (default: cli:<login>)")
    rm = msub.add_parser("remove", help="remove a window by name or id")
    rm.add_argument("name")
    rm.add_argument("--actor", default="", help="who (default: cli:<login>)")


def run_maintenance(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from bot.authz import Roles
    from bot.maintenance import Maintenance, WindowSpec
    from bot.ports import SystemClock
    from bot.store.db import check_connection, make_engine, migrate

    engine = make_engine(settings.database_url)
    try:
        check_connection(engine)
        migrate(engine)
        roles = Roles.load(settings.roles_file) if settings.roles_file else Roles.embedded_default()
        service = Maintenance(engine, roles, SystemClock())
        actor = getattr(args, "actor", "") or f"cli:{getpass.getuser()}"
        if args.action == "list":
            views = asyncio.run(service.list())
            for view in views:
                print(json.dumps(view.as_json()) if args.json else view.line(), file=out)
            if not views and not args.json:
                print("no maintenance windows", file=out)
            return EXIT_OK
        if args.action == "remove":
            gone = asyncio.run(service.remove(args.name, actor, SURFACE))
            print(f"removed maintenance window '{gone.name}'", file=out)
            return EXIT_OK
        try:
            spec = WindowSpec(
                name=args.name,
                matchers=tuple(args.match),
                duration=args.duration,
                timezone=args.timezone,
                days=args.days,
                start=args.start,
                cron=args.cron,
                include_critical=args.include_critical,
                reason=args.reason,
            )
        except ValidationError as exc:
            raise PermanentError(exc.errors()[0]["msg"]) from None
        made = asyncio.run(service.add(spec, actor, SURFACE))
        print(f"added {made.line()}", file=out)
        return EXIT_OK
    finally:
        engine.dispose()


__all__ = ["add_maintenance_commands", "run_maintenance"]
