"""``run_bot.py backtest``: replay rules over a past range the way the scheduler runs them.

Every rule runs at each of its interval steps (or cron times) through the real pipeline: the
scheduler's :class:`~bot.scheduler.RuleRunner` plans the window, the rule type evaluates it
with the rule's memory, and ingest groups, dedups, applies realert, silences and flap reopening.
The runs go to a throw-away SQLite database, with a clock the replay moves. The first window
of a rule starts at ``--from``; the last ends at or before ``--to``.

Nobody acknowledges or resolves incidents during a replay, so an incident would stay open
forever and hide how often its group would page again: an incident whose group has had no new
event for ``resolve_quiet`` is resolved (as when the condition clears); when it fires again
within the flap window it reopens, later it opens a new incident.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine, event, select, update

from bot.domain.incident import Command, CommandKind, State, transition
from bot.errors import ConfigError, Conflict
from bot.metrics import Metrics
from bot.pipeline.ingest import IngestPolicy
from bot.pipeline.mute import Matcher
from bot.pipeline.notify import Router, Target
from bot.ports import SearchBackend
from bot.scheduler import RuleRunner
from bot.store.db import make_engine, migrate
from bot.store.repo import INCIDENTS, SILENCES, state_columns, to_incident
from detectors.model import Rule
from detectors.tools.gaps import FieldGap, GapCounter

MAX_RUNS = 250_000
TOP_KEYS = 10
ACTOR = "backtest"


@dataclass(frozen=True, slots=True)
class Tally:
    runs: int = 0
    hits: int = 0
    opened: int = 0
    reopened: int = 0
    notified: int = 0
    muted: int = 0
    held: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True, slots=True)
class Options:
    start: datetime
    end: datetime
    flap_window: timedelta = timedelta(minutes=30)
    card_refresh: timedelta = timedelta(seconds=60)
    resolve_quiet: timedelta | None = timedelta(hours=1)
    silences: tuple[tuple[Matcher, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule: Rule
    tally: Tally
    error: str = ""
    gaps: tuple[FieldGap, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    source: str
    options: Options
    rules: tuple[RuleOutcome, ...]
    days: tuple[tuple[date, Tally], ...]
    by_incidents: tuple[tuple[str, int], ...]
    by_notifications: tuple[tuple[str, int], ...]

    @property
    def total(self) -> Tally:
        return sum((tally for _, tally in self.days), Tally())

    @property
    def failed(self) -> bool:
        return any(outcome.error for outcome in self.rules)

    @property
    def gaps(self) -> bool:
        """Whether some rule's result rows lacked one of its ``group_by`` fields."""
        return any(outcome.gaps for outcome in self.rules)

    def text(self) -> str:
        o = self.options
        resolve = (
            f"incidents resolve after {_span(o.resolve_quiet)} without new events"
            if o.resolve_quiet
            else "incidents are never resolved"
        )
        silences = "; ".join(", ".join(map(str, s)) for s in o.silences) or "none"
        lines = [
            f"backtest of {len(self.rules)} rule(s) from {o.start:%Y-%m-%d %H:%M:%S} to "
            f"{o.end:%Y-%m-%d %H:%M:%S} UTC against {self.source}",
            f"{resolve}; reopen within {_span(o.flap_window)}; silences: {silences}",
            "",
            _row("rule", Tally(), header=True),
        ]
        for outcome in self.rules:
            note = "" if outcome.rule.enabled else "  (disabled)"
            lines.append(_row(outcome.rule.id, outcome.tally) + note)
            if outcome.error:
                lines.append(f"  stopped: {outcome.error}")
            lines += [f"  WARNING {gap.text()}" for gap in outcome.gaps]
        lines += ["", _row("day (UTC)", Tally(), header=True)]
        lines += [_row(day.isoformat(), tally) for day, tally in self.days]
        lines.append(_row("total", self.total))
        for name, ranked in (
            ("incidents", self.by_incidents),
            ("notifications", self.by_notifications),
        ):
            lines += ["", f"noisiest keys by {name}:"]
            lines += [f"  {count:>6}  {key}" for key, count in ranked] or ["  (none)"]
        return "\n".join(lines)


_COLUMNS = ("runs", "hits", "opened", "reopened", "notified", "muted", "held")


def _row(label: str, tally: Tally, header: bool = False) -> str:
    cells = _COLUMNS if header else tuple(str(v) for v in astuple(tally))
    return f"{label:<30}" + "".join(f"{cell:>10}" for cell in cells)


def _span(delta: timedelta | None) -> str:
    seconds = int(delta.total_seconds()) if delta else 0
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def run_times(rule: Rule, start: datetime, end: datetime) -> list[datetime]:
    """The clock readings at which the scheduler would run ``rule`` to cover ``[start, end]``:
    the first window ends ``window`` after ``start``, the last at or before ``end``."""
    first_end = min(start + rule.window, end)
    if rule.schedule is None:
        assert rule.interval is not None
        count = int((end - first_end) / rule.interval) + 1
        if count > MAX_RUNS:
            raise ConfigError(_too_long(rule, count))
        return [first_end + rule.interval * k + rule.query_delay for k in range(count)]
    trigger = CronTrigger.from_crontab(rule.schedule, timezone=UTC)
    times: list[datetime] = []
    at = trigger.get_next_fire_time(None, first_end + rule.query_delay)
    while at is not None and at - rule.query_delay <= end:
        times.append(at.astimezone(UTC))
        if len(times) > MAX_RUNS:
            raise ConfigError(_too_long(rule, len(times)))
        at = trigger.get_next_fire_time(at, at + timedelta(microseconds=1))
    return times


def _too_long(rule: Rule, count: int) -> str:
    return (
        f"rule {rule.id}: more than {MAX_RUNS} runs ({count}) in this range; "
        "backtest a shorter range"
    )


class SteppedClock:
    """The replay's clock: it reads what the replay last set."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclass(slots=True)
class _Accounts:
    per_rule: dict[str, Tally] = field(default_factory=dict)
    per_day: dict[date, Tally] = field(default_factory=dict)
    incidents: Counter[int] = field(default_factory=Counter)
    notifications: Counter[int] = field(default_factory=Counter)

    def add(self, rule_id: str, day: date, tally: Tally) -> None:
        self.per_rule[rule_id] = self.per_rule.get(rule_id, Tally()) + tally
        self.per_day[day] = self.per_day.get(day, Tally()) + tally


async def backtest(
    rules: Sequence[Rule],
    backend: SearchBackend,
    options: Options,
    source: str,
    redact: Callable[[str], str],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Report:
    """Replay ``rules`` over the range of ``options``; see the module documentation."""
    if options.end <= options.start:
        raise ConfigError("--to must be after --from")
    plan = sorted(
        (at, order, rule.id)
        for order, rule in enumerate(rules)
        for at in run_times(rule, options.start, options.end)
    )
    with tempfile.TemporaryDirectory(prefix="backtest-") as folder:
        engine = _throwaway_engine(Path(folder) / "backtest.db")
        try:
            return await _replay(engine, rules, backend, options, source, redact, plan, progress)
        finally:
            engine.dispose()


async def _replay(
    engine: Engine,
    rules: Sequence[Rule],
    backend: SearchBackend,
    options: Options,
    source: str,
    redact: Callable[[str], str],
    plan: list[tuple[datetime, int, str]],
    progress: Callable[[int, int], None],
) -> Report:
    _add_silences(engine, options)
    router = Router((), (Target("console", "console"),))
    clock = SteppedClock(options.start)

    def policy_for(rule: Rule) -> IngestPolicy:
        return IngestPolicy(
            router=router,
            flap_window=options.flap_window,
            card_refresh=options.card_refresh,
            realert=rule.realert,
        )

    counter = GapCounter(backend, rules)
    runner = RuleRunner(
        engine=engine,
        backend=counter,
        rules=rules,
        clock=clock,
        redact=redact,
        policy_for=policy_for,
        metrics=Metrics(),
    )
    accounts = _Accounts(per_rule={rule.id: Tally() for rule in rules})
    errors: dict[str, str] = {}
    resolved_at: datetime | None = None
    for done, (at, _, rule_id) in enumerate(plan, 1):
        if rule_id in errors:
            progress(done, len(plan))
            continue
        clock.at = at
        if options.resolve_quiet is not None and at != resolved_at:
            _resolve_quiet(engine, at, options.resolve_quiet)
            resolved_at = at
        summary = await runner.run(rule_id)
        if summary.error:
            errors[rule_id] = f"run at {at:%Y-%m-%d %H:%M:%S} UTC failed: {summary.error}"
        result = summary.result
        fresh = [*result.created, *result.reopened]
        silent = {*result.muted, *result.held_by_realert}
        notified = [i for i in fresh if i not in silent]
        accounts.incidents.update(fresh)
        accounts.notifications.update(notified)
        tally = Tally(
            runs=1,
            hits=summary.hits,
            opened=len(result.created),
            reopened=len(result.reopened),
            notified=len(notified),
            muted=len(result.muted),
            held=len(result.held_by_realert),
        )
        accounts.add(rule_id, at.date(), tally)
        progress(done, len(plan))
    keys = _group_keys(engine)
    return Report(
        source=source,
        options=options,
        rules=tuple(
            RuleOutcome(
                rule, accounts.per_rule[rule.id], errors.get(rule.id, ""), counter.gaps(rule)
            )
            for rule in rules
        ),
        days=tuple(sorted(accounts.per_day.items())),
        by_incidents=_ranked(accounts.incidents, keys),
        by_notifications=_ranked(accounts.notifications, keys),
    )


def _throwaway_engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")  # the database is thrown away afterwards
        cursor.close()

    migrate(engine)
    return engine


def _add_silences(engine: Engine, options: Options) -> None:
    if not options.silences:
        return
    rows = [
        {
            "matchers_json": json.dumps([str(m) for m in matchers]),
            "starts_at": options.start - timedelta(days=1),
            "ends_at": options.end + timedelta(days=1),
            "created_by": ACTOR,
            "reason": "backtest --silence",
            "created_at": options.start,
        }
        for matchers in options.silences
    ]
    with engine.begin() as conn:
        conn.execute(SILENCES.insert(), rows)


def _resolve_quiet(engine: Engine, now: datetime, quiet: timedelta) -> None:
    """Resolve active incidents whose last event is ``quiet`` or longer ago."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(INCIDENTS).where(
                INCIDENTS.c.state != State.RESOLVED.value,
                INCIDENTS.c.last_seen <= now - quiet,
            )
        ).all()
        for row in rows:
            incident = to_incident(row)
            command = Command(CommandKind.CLEAR, actor=ACTOR, surface=ACTOR)
            try:
                after = transition(incident, command, now).after
            except Conflict:
                continue
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == incident.id, INCIDENTS.c.version == incident.version)
                .values(**state_columns(after), version=incident.version + 1)
            )


def _group_keys(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(INCIDENTS.c.id, INCIDENTS.c.group_key)).all()
    return {incident_id: key for incident_id, key in rows}


def _ranked(counts: Counter[int], keys: dict[int, str]) -> tuple[tuple[str, int], ...]:
    by_key: Counter[str] = Counter()
    for incident_id, count in counts.items():
        by_key[keys.get(incident_id, f"incident {incident_id}")] += count
    return tuple(sorted(by_key.items(), key=lambda item: (-item[1], item[0]))[:TOP_KEYS])
