"""``run_bot.py``: run the bot, validate files, simulate scenarios, work incidents."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.cli_admin import add_admin_commands, run_admin
from bot.cli_maintenance import add_maintenance_commands, run_maintenance
from bot.cli_reports import add_export_command, add_report_command, run_export, run_report
from bot.cli_runs import ACTIONS as RUN_ACTIONS
from bot.cli_runs import add_run_commands, run_command
from bot.cli_validate import validate
from bot.errors import BotError, ConfigError, PermanentError
from bot.identity.commands import add_token_commands, run_tokens
from bot.settings import Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_bot.py",
        description="Incident ChatOps bot: detections to incidents to conversations.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("run", help="run the bot (the default): schedules, API, console")

    validate = sub.add_parser(
        "validate",
        help="check rule, playbook, roles and settings files; print file:line: message",
    )
    validate.add_argument(
        "paths", nargs="*", type=Path, help="extra rule or playbook files or folders"
    )

    simulate = sub.add_parser(
        "simulate", help="inject a named scenario into the local backend (running bot or file)"
    )
    simulate.add_argument("scenario", nargs="?", help="scenario name; omit to list them")
    simulate.add_argument("--url", help="the running bot (default: BOT_HTTP_HOST:BOT_HTTP_PORT)")

    _add_rule_tools(sub)
    add_admin_commands(sub)
    add_maintenance_commands(sub)

    add_token_commands(sub)

    package = sub.add_parser(
        "teams-package", help="build the Teams app package (manifest and icons) to upload"
    )
    package.add_argument("--out", type=Path, default=Path("."), help="folder for the zip")

    incidents = sub.add_parser("incidents", help="list, show and act on incidents")
    isub = incidents.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = isub.add_parser("list", help="list incidents (active ones by default)")
    lst.add_argument(
        "--state",
        choices=["active", "open", "acknowledged", "suppressed", "resolved", "all"],
        default="active",
    )
    lst.add_argument("--limit", type=int, default=50)
    lst.add_argument("--json", action="store_true", help="print JSON")
    show = isub.add_parser("show", help="one incident with evidence, RCA and timeline")
    show.add_argument("id", help="INC-n")
    show.add_argument("--json", action="store_true", help="print JSON")
    for name, text in (
        ("ack", "acknowledge"),
        ("unack", "unacknowledge"),
        ("unsuppress", "end a suppression"),
        ("reopen", "reopen a resolved incident"),
    ):
        p = isub.add_parser(name, help=text)
        p.add_argument("id", help="INC-n")
    sup = isub.add_parser("suppress", help="suppress for a duration with a reason")
    sup.add_argument("id", help="INC-n")
    sup.add_argument("duration", help="30m, 1h, 4h, 24h …")
    sup.add_argument("reason", nargs="+", help="why")
    res = isub.add_parser("resolve", help="resolve, with an optional note")
    res.add_argument("id", help="INC-n")
    res.add_argument("note", nargs="*", help="what fixed it")
    asg = isub.add_parser("assign", help="assign to a person")
    asg.add_argument("id", help="INC-n")
    asg.add_argument("user")
    com = isub.add_parser("comment", help="add a comment to the timeline")
    com.add_argument("id", help="INC-n")
    com.add_argument("text", nargs="+")
    add_run_commands(isub)
    add_export_command(isub)
    add_report_command(sub)
    return parser


def _add_rule_tools(sub: Any) -> None:
    from bot.domain.hits import Category

    def data_options(p: argparse.ArgumentParser) -> None:
        source = p.add_mutually_exclusive_group()
        source.add_argument(
            "--data",
            type=Path,
            metavar="EVENTS.JSONL",
            help="JSON lines of events, or a log file with --sourcetype "
            "(default: BOT_LOCAL_EVENTS_PATH)",
        )
        source.add_argument("--splunk", action="store_true", help="search Splunk (SPLUNK_*)")
        p.add_argument(
            "--sourcetype", help="--data is a plain log file of this sourcetype (linux_secure …)"
        )
        p.add_argument("--index", default="main", help="the log file's index (default: main)")
        p.add_argument("--host", default="", help="the log file's host (default: from its lines)")
        p.add_argument(
            "--year", type=int, help="year of syslog times (default: the file's modified date)"
        )
        p.add_argument(
            "--strict",
            action="store_true",
            help="exit 1 when a group_by field is missing from result rows",
        )

    test_rule = sub.add_parser(
        "test-rule", help="run a rule file once over a time range and show what would fire"
    )
    test_rule.add_argument("file", type=Path, help="a rule file or folder")
    data_options(test_rule)
    test_rule.add_argument(
        "--from", dest="start", metavar="TIME", help="ISO 8601, epoch or -24h (default: window)"
    )
    test_rule.add_argument("--to", dest="end", metavar="TIME", default="now", help="default: now")

    backtest = sub.add_parser(
        "backtest", help="replay a rule file over a time range as the scheduler would"
    )
    backtest.add_argument("file", type=Path, help="a rule file or folder")
    backtest.add_argument(
        "--from", dest="start", metavar="TIME", required=True, help="ISO 8601, epoch or -7d"
    )
    backtest.add_argument("--to", dest="end", metavar="TIME", default="now", help="default: now")
    data_options(backtest)
    backtest.add_argument(
        "--silence",
        action="append",
        default=[],
        metavar="MATCHERS",
        help="a silence over the whole range: service=checkout[,host=web-*] (repeatable)",
    )
    backtest.add_argument(
        "--resolve-quiet",
        default="1h",
        metavar="DURATION",
        help="resolve an incident after this long without new events (default 1h; never)",
    )

    imports = sub.add_parser(
        "import-splunk", help="convert the alerts of a savedsearches.conf into rule files"
    )
    imports.add_argument("conf", type=Path, help="a savedsearches.conf")
    imports.add_argument(
        "--out", type=Path, default=Path("imported-rules"), help="default: ./imported-rules"
    )
    imports.add_argument(
        "--category",
        default="application",
        choices=[c.value for c in Category],
        help="category of the imported rules (default: application)",
    )


def _relative_times(argv: Sequence[str]) -> list[str]:
    """``--from -24h`` as ``--from=-24h``: argparse would take ``-24h`` for an option."""
    out: list[str] = []
    for arg in argv:
        relative = arg[:1] == "-" and (arg[1:2].isdigit() or arg[1:2] == "@")
        if out and out[-1] in ("--from", "--to") and relative:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_relative_times(sys.argv[1:] if argv is None else argv))
    command = args.command or "run"
    try:
        if command == "validate":
            return validate(args.paths)
        if command == "import-splunk":
            from detectors.tools.commands import run_import_splunk

            return run_import_splunk(args.conf, args.out, args.category, sys.stdout)
        settings = load_settings()
        if command in ("test-rule", "backtest"):
            return _rule_tool(settings, args)
        if command == "run":
            return _run(settings)
        if command == "tokens":
            return run_tokens(settings, args, sys.stdout)
        if command == "simulate":
            return _simulate(settings, args.scenario, args.url)
        if command == "teams-package":
            from bot.wiring import build_teams_package

            print(f"Teams app package: {build_teams_package(settings, args.out)}")
            return 0
        if command in ("killswitch", "audit", "config"):
            return run_admin(settings, args)
        if command == "maintenance":
            return run_maintenance(settings, args, sys.stdout)
        if command == "report":
            return run_report(settings, args, sys.stdout)
        if command == "incidents" and args.action == "export":
            return run_export(settings, args, sys.stdout)
        return asyncio.run(_incidents(settings, args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


def _rule_tool(settings: Settings, args: argparse.Namespace) -> int:
    from detectors.tools import commands as tools
    from detectors.tools.commands import log_options
    from detectors.tools.sources import DataChoice

    choice = DataChoice(
        args.data,
        args.splunk,
        settings.local_events_path,
        log_options(args),
        tuple(settings.field_extraction_paths),
    )
    if args.command == "test-rule":
        return tools.run_test_rule(
            settings, args.file, choice, args.start, args.end, sys.stdout, strict=args.strict
        )
    return tools.run_backtest(
        settings,
        args.file,
        choice,
        args.start,
        args.end,
        args.silence,
        args.resolve_quiet,
        sys.stdout,
        sys.stderr,
        strict=args.strict,
    )


def _run(settings: Settings) -> int:
    import uvicorn

    from bot.logs import configure
    from bot.server import create_app
    from bot.wiring import Runtime

    runtime = Runtime(settings)
    configure(settings.log_level, settings.log_format, runtime.redactor)
    app = create_app(runtime)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # open console streams must not hold up a stop
    )
    server = uvicorn.Server(config)
    # what start-up built (modules, settings, the app) lives as long as the process: kept out
    # of the cyclic collector's full passes, each of which otherwise stops every thread for
    # over 100 ms to walk it again
    gc.freeze()
    # a database schema newer than this build: stop the server, say why, exit 2
    runtime.on_fatal = lambda reason: setattr(server, "should_exit", True)
    server.run()
    if runtime.fatal:
        print(f"configuration error: {runtime.fatal}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _simulate(settings: Settings, scenario: str | None, url: str | None) -> int:
    import httpx

    from integrations.local.scenarios import SCENARIOS

    if scenario is None:
        for name, item in SCENARIOS.items():
            print(f"{name:22} {item.description}")
        return EXIT_OK
    if scenario not in SCENARIOS:
        print(
            f"error: unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}", file=sys.stderr
        )
        return EXIT_FAILED
    base = (url or settings.console_url).rstrip("/")
    headers = {"X-Bot-User": getpass.getuser()}
    if settings.console_token is not None:
        headers["Authorization"] = f"Bearer {settings.console_token.get_secret_value()}"
    try:
        response = httpx.post(
            f"{base}/api/v1/simulate", json={"scenario": scenario}, headers=headers, timeout=10
        )
    except httpx.TransportError:
        response = None
    if response is not None and response.status_code == 200:
        print(f"injected {response.json()['events']} events of {scenario} into the bot at {base}")
        return EXIT_OK
    if response is not None and response.status_code != 404:
        print(f"error: {response.json().get('error', response.text)}", file=sys.stderr)
        return EXIT_FAILED
    from bot.ports import SystemClock
    from integrations.local.events import EventStore
    from integrations.local.generator import Generator

    store = EventStore(settings.local_events_path)
    try:
        count = Generator(store).inject(scenario, SystemClock().now())
    finally:
        store.close()
    print(
        f"no bot answered at {base}; wrote {count} events of {scenario} "
        f"to {settings.local_events_path}"
    )
    return EXIT_OK


async def _incidents(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from bot.api import incident_detail, incident_json, incident_number
    from bot.authz import Roles
    from bot.domain.durations import parse_duration
    from bot.domain.incident import Command, CommandKind
    from bot.interactions import Interactions
    from bot.ports import SystemClock
    from bot.store.db import check_connection, make_engine, migrate
    from bot.store.repo import IncidentFilter, list_incidents
    from bot.wiring_settings import build_router

    if args.action in RUN_ACTIONS:
        return await run_command(settings, args)
    engine = make_engine(settings.database_url)
    check_connection(engine)
    migrate(engine)
    if args.action == "list":
        states = {
            "active": ("open", "acknowledged", "suppressed"),
            "all": (),
        }.get(args.state, (args.state,))
        with Session(engine) as session:
            items, total = list_incidents(session, IncidentFilter(state=states), args.limit)
        if args.json:
            print(json.dumps({"items": [incident_json(i) for i in items], "total": total}))
            return EXIT_OK
        for i in items:
            print(
                f"{i.human_id:>8}  {i.severity.value:8} {i.state.value:12} "
                f"{i.hit_count:>6}  {i.title}"
            )
        print(f"{len(items)} of {total} incidents")
        return EXIT_OK
    if args.action == "show":
        detail = incident_detail(engine, incident_number(args.id))
        if args.json:
            print(json.dumps(detail, indent=2))
        else:
            _print_detail(detail)
        return EXIT_OK

    roles = Roles.load(settings.roles_file) if settings.roles_file else Roles.embedded_default()
    router = build_router(settings, {"console": "console"})
    interactions = Interactions(engine, roles, router, SystemClock())
    actor = f"cli:{getpass.getuser()}"
    kinds = {
        "ack": CommandKind.ACKNOWLEDGE,
        "unack": CommandKind.UNACKNOWLEDGE,
        "unsuppress": CommandKind.UNSUPPRESS,
        "reopen": CommandKind.REOPEN,
        "suppress": CommandKind.SUPPRESS,
        "resolve": CommandKind.RESOLVE,
        "assign": CommandKind.ASSIGN,
        "comment": CommandKind.COMMENT,
    }
    fields: dict[str, Any] = {}
    if args.action == "suppress":
        try:
            fields["duration"] = parse_duration(args.duration)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        fields["reason"] = " ".join(args.reason)
    elif args.action == "resolve":
        fields["note"] = " ".join(args.note)
    elif args.action == "assign":
        fields["user"] = args.user
    elif args.action == "comment":
        fields["text"] = " ".join(args.text)
    command = Command(kind=kinds[args.action], actor=actor, surface="cli", **fields)
    outcome = await interactions.execute(incident_number(args.id), command)
    print(f"{outcome.incident.human_id}: {outcome.message}")
    return EXIT_OK


def _print_detail(d: dict[str, Any]) -> None:
    print(f"{d['id']}  [{d['severity']}] {d['title']}")
    print(
        f"state: {d['state']} (by {d['state_changed_by']})   service: {d['service'] or '-'}"
        f"   host: {d['host'] or '-'}   events: {d['hit_count']}"
    )
    print(f"first seen {d['first_seen']}   last seen {d['last_seen']}")
    rca = d.get("rca")
    if rca:
        print(f"\nroot cause ({rca['engine']}, {rca['confidence']:.0%}): {rca['summary']}")
        for cause in rca["causes"]:
            print(f"  - {cause['text']} [{', '.join(cause['evidence_ids'])}]")
    if d["evidence"]:
        print("\nevidence:")
        for e in d["evidence"][:10]:
            print(f"  {e['id']}  {e['text']}")
    print("\ntimeline:")
    for t in d["timeline"]:
        print(f"  {t['at'][:19]}  {t['text']}  ({t['actor']} via {t['surface']})")
