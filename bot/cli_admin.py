"""``run_bot.py killswitch``, ``run_bot.py audit verify`` and ``run_bot.py config``.

They work on the database directly (``BOT_DATABASE_URL``), so they answer even when no bot is
running; the acting identity is ``cli:<login>`` (or ``--actor``) and needs the admin role for
changes.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from bot.errors import NotFound, PermanentError
from bot.settings import Settings

EXIT_OK, EXIT_FAILED = 0, 1
FIELDS = ("enabled", "auto", "threshold", "max_retries", "notify_required", "allowed_playbooks")


def add_admin_commands(sub: Any) -> None:
    kill = sub.add_parser("killswitch", help="stop every remediation now, or allow them again")
    kill.add_argument("state", choices=["on", "off", "status"])
    kill.add_argument("--reason", default="", help="why (required for on and off)")
    kill.add_argument("--actor", default="", help="who (default: cli:<login>)")

    audit = sub.add_parser("audit", help="check the audit chain")
    asub = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    asub.add_parser("verify", help="report the first entry that was altered or removed")

    config = sub.add_parser("config", help="show or change remediation policy per category")
    csub = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    csub.add_parser("show", help="the kill switch, the limit and every category")
    setter = csub.add_parser(
        "set-category", help="change a category: threshold=0.95 auto=true allowed_playbooks=a,b"
    )
    setter.add_argument("category")
    setter.add_argument("changes", nargs="+", metavar="KEY=VALUE", help=", ".join(FIELDS))
    setter.add_argument("--actor", default="", help="who (default: cli:<login>)")
    for verb, text in (("enable", "turn a playbook back on"), ("disable", "turn a playbook off")):
        switch = csub.add_parser(f"{verb}-playbook", help=f"{text} (audited)")
        switch.add_argument("playbook")
        switch.add_argument("--reason", required=True, help="why")
        switch.add_argument("--actor", default="", help="who (default: cli:<login>)")


def run_admin(settings: Settings, args: argparse.Namespace) -> int:
    from bot.store.db import check_connection, make_engine, migrate

    engine = make_engine(settings.database_url)
    try:
        check_connection(engine)
        migrate(engine)
        if args.command == "killswitch":
            return _killswitch(settings, engine, args)
        if args.command == "audit":
            return _verify(engine)
        if args.action == "show":
            return _show(settings, engine)
        if args.action in ("enable-playbook", "disable-playbook"):
            return _switch_playbook(settings, engine, args)
        return _set_category(settings, engine, args)
    finally:
        engine.dispose()


def _actor(args: argparse.Namespace) -> str:
    return args.actor or f"cli:{getpass.getuser()}"


def _require_admin(settings: Settings, actor: str) -> None:
    from bot.authz import Role, Roles

    roles = Roles.load(settings.roles_file) if settings.roles_file else Roles.embedded_default()
    roles.require(actor, Role.ADMIN)


def _killswitch(settings: Settings, engine: Engine, args: argparse.Namespace) -> int:
    from bot.ports import SystemClock
    from bot.store.runtime_config import change_kill_switch, read_kill_switch

    if args.state == "status":
        print(f"kill switch {read_kill_switch(engine).describe()}")
        return EXIT_OK
    actor = _actor(args)
    _require_admin(settings, actor)
    on = args.state == "on"
    change = change_kill_switch(engine, on, actor, "cli", args.reason, SystemClock().now())
    print(change.message)
    return EXIT_OK


def _verify(engine: Engine) -> int:
    from bot.store.audit import verify

    report = verify(engine)
    if report.ok:
        print(f"audit chain intact: {report.checked} entries")
        return EXIT_OK
    print(f"audit chain broken: {report.problem} ({report.checked} entries before it verified)")
    return EXIT_FAILED


def _show(settings: Settings, engine: Engine) -> int:
    from bot.store.breakers import disabled_playbooks
    from bot.store.runtime_config import (
        DEFAULT_MAX_CONCURRENT,
        read_categories,
        read_kill_switch,
        read_max_concurrent,
    )

    default = int(getattr(settings, "max_concurrent_resolutions", DEFAULT_MAX_CONCURRENT))
    print(f"kill switch {read_kill_switch(engine).describe()}")
    print(f"max_concurrent_resolutions {read_max_concurrent(engine, default)}")
    print(f"\n{'category':15} enabled auto  threshold retries notify allowed playbooks")
    for name, p in read_categories(engine).items():
        allowed = ", ".join(p.allowed_playbooks) or "(all)"
        print(
            f"{name:15} {_yes(p.enabled):7} {_yes(p.auto):5} {p.threshold:9.2f} "
            f"{p.max_retries:7} {_yes(p.notify_required):6} {allowed}"
        )
    for playbook, reason in sorted(disabled_playbooks(engine).items()):
        print(f"playbook {playbook} is off: {reason}")
    return EXIT_OK


def _known_playbooks(settings: Settings) -> frozenset[str]:
    from detectors.rules import load_rules
    from playbooks.wiring import load_registry

    local = settings.search_backend == "local"
    rules = load_rules(settings.rule_paths, include_shipped=settings.shipped_rules, local_spl=local)
    return frozenset(load_registry(settings, rules, embedded=local).ids())


def _switch_playbook(settings: Settings, engine: Engine, args: argparse.Namespace) -> int:
    from bot.ports import SystemClock
    from bot.store.breakers import disable_playbook, enable_playbook

    if args.playbook not in _known_playbooks(settings):
        raise NotFound(f"no playbook {args.playbook!r}; run_bot.py validate lists problems")
    actor = _actor(args)
    _require_admin(settings, actor)
    now = SystemClock().now()
    if args.action == "enable-playbook":
        if enable_playbook(engine, args.playbook, args.reason, now, actor, "cli"):
            print(f"{args.playbook} is on")
        else:
            print(f"{args.playbook} was not turned off")
        return EXIT_OK
    disable_playbook(engine, args.playbook, args.reason, now, actor, "cli")
    print(f"{args.playbook} is off: {args.reason}")
    return EXIT_OK


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    """``["threshold=0.95", "allowed_playbooks=a,b"]`` -> a body for ``CategoryUpdate``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PermanentError(f"{pair!r}: write KEY=VALUE, keys: {', '.join(FIELDS)}")
        if key not in FIELDS:
            raise PermanentError(f"{key}: unknown setting; use one of {', '.join(FIELDS)}")
        value = value.strip()
        if key == "allowed_playbooks":
            out[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif key in ("enabled", "auto", "notify_required"):
            if value.lower() not in ("true", "false", "yes", "no", "on", "off"):
                raise PermanentError(f"{key}: write true or false, not {value!r}")
            out[key] = value.lower() in ("true", "yes", "on")
        elif key == "threshold":
            try:
                out[key] = float(value)
            except ValueError:
                raise PermanentError(f"threshold: not a number: {value!r}") from None
        else:
            if not value.lstrip("-").isdigit():
                raise PermanentError(f"{key}: not a whole number: {value!r}")
            out[key] = int(value)
    return out


def _set_category(settings: Settings, engine: Engine, args: argparse.Namespace) -> int:
    from bot.ports import SystemClock
    from bot.store.runtime_config import (
        CategoryUpdate,
        check_category,
        describe_validation,
        read_category,
        save_category_in,
    )

    check_category(args.category)
    try:
        update = CategoryUpdate.model_validate(parse_changes(args.changes))
    except ValidationError as exc:
        raise PermanentError(describe_validation(exc)) from None
    actor = _actor(args)
    _require_admin(settings, actor)
    with engine.begin() as conn:
        before = read_category(conn, args.category)
        after = save_category_in(
            conn,
            update.apply(before),
            actor,
            "cli",
            SystemClock().now(),
            _known_playbooks(settings),
        )
    for name in FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            print(f"{args.category}.{name}: {_show_value(old)} -> {_show_value(new)}")
    if before == after:
        print(f"{args.category}: nothing changed")
    return EXIT_OK


def _show_value(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) or "(all)"
    return str(value)
