"""Playbooks under load: 50 incidents pressed at once under mixed policies, then the kill switch.

Each repetition runs in a fresh interpreter on a fresh database (SQLite in a temporary folder,
or a PostgreSQL schema with ``--database-url``) and drives the real ``Remediation`` service:
planning, the gate, run creation with the database's concurrency limit, the engine, the audit
chain and the outbox. Steps go to a port-level executor that sleeps (``--step-ms``) and records
when each step begins and ends, so concurrency is observed where the work happens; verification
re-runs each incident's rule against an in-process search backend that finds nothing (cleared).

1. **Mixed policies**: ``--incidents`` incidents over six categories, each with its own policy
   (one runs at once, one needs an approval for its threshold, one for a high-risk playbook,
   one is disabled, one allows another playbook only, one is pressed by a viewer), all pressed
   at the same moment. Every answer is checked against the decision its policy implies; runs
   that pass every check but find ``max_concurrent_resolutions`` (``--cap``) live runs are
   refused for concurrency, which is correct too. The most steps ever running at once must
   never exceed the cap.
2. **Kill switch**: ``--cap`` runs of five steps start; mid-way the switch goes on. Measured:
   from the switch to the moment every run has stopped (no step began after it), in ms; it must
   be under 1 s (the switch is cached for at most 0.5 s per process, plus the step in flight).

    python bench/playbooks.py [--runs 3] [--incidents 50] [--cap 10] [--step-ms 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import emit, median, postgres_schema, run_child, spread, sqlite_url

from bot.authz import Roles
from bot.domain.hits import Category, Hit, SearchQuery
from bot.errors import BotError, Conflict, PolicyViolation
from bot.interactions import Interactions
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.pipeline.notify import Router, Target
from bot.ports import ExecutionPlan, Health, HealthStatus, ParamValue, StepResult, SystemClock
from bot.redaction import Redactor
from bot.store.db import make_engine, migrate
from bot.store.runs import RUNS
from bot.store.runtime_config import CategoryPolicy, save_category, set_kill_switch
from detectors.types.threshold import ThresholdRule
from playbooks.model import RunStatus
from playbooks.outcome import Deps, Limits
from playbooks.registry import Registry
from playbooks.service import Remediation
from playbooks.spec import Playbook
from tests.builders import alert

TARGET_STOP_MS = 1000.0
RESPONDER = "console:ann"
VIEWER = "console:vic"
# category -> (playbook, policy, who presses, the decision expected)
PLANS: dict[Category, tuple[str, dict[str, Any], str, str]] = {
    Category.APPLICATION: ("bench-low", {}, RESPONDER, "run"),
    Category.DATABASE: ("bench-low", {"threshold": 0.99}, RESPONDER, "approval"),
    Category.INFRASTRUCTURE: ("bench-high", {}, RESPONDER, "approval"),
    Category.SECURITY: ("bench-low", {"enabled": False}, RESPONDER, "refused:category"),
    Category.NETWORK: (
        "bench-low",
        {"allowed_playbooks": ("bench-high",)},
        RESPONDER,
        "refused:allowed",
    ),
    Category.USER_ACCESS: ("bench-low", {}, VIEWER, "refused:role"),
}


class SleepingExecutor:
    """An executor at the port: each step sleeps; begin and end times are kept."""

    name = "sleep"

    def __init__(self) -> None:
        self.running = 0
        self.max_running = 0
        self.began: list[float] = []

    async def plan(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> ExecutionPlan:
        ms = int(params.get("ms", 100))  # type: ignore[call-overload]
        return ExecutionPlan(
            "sleep",
            action,
            f"sleep:{params.get('on', '')}",
            f"sleep {ms} ms",
            (("ms", ms), ("on", str(params.get("on", "")))),
            timeout_s,
        )

    async def run(self, plan: ExecutionPlan) -> StepResult:
        self.began.append(time.perf_counter())
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(int(plan.param("ms", 100)) / 1000)  # type: ignore[arg-type]
        finally:
            self.running -= 1
        return StepResult(True, output="slept")


class NothingFound:
    async def search(self, query: SearchQuery) -> list[Hit]:
        return []

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


def playbook(pid: str, risk: str, steps: int, ms: int) -> Playbook:
    return Playbook.model_validate(
        {
            "id": pid,
            "title": pid,
            "category": "application",
            "risk": risk,
            "matches": {"rules": ["bench"]},
            "target": "service:{service}",
            "steps": [
                {
                    "name": f"step {i + 1}",
                    "executor": "sleep",
                    "action": "sleep",
                    "args": {"ms": ms, "on": "{service}"},
                    "reversible": True,
                }
                for i in range(steps)
            ],
            "verify": {"wait": "0s"},
            "cooldown": "0s",
        }
    )


def build(url: str, args: argparse.Namespace, steps: int) -> tuple[Remediation, SleepingExecutor]:
    engine = make_engine(url)
    migrate(engine)
    clock = SystemClock()
    router = Router((), (Target("console", "console"),))
    roles_file = Path(tempfile.mkdtemp()) / "roles.yaml"
    roles_file.write_text(json.dumps({"roles": {"responder": [RESPONDER]}}))
    roles = Roles.load(roles_file)
    rule = ThresholdRule(
        id="bench",
        title="bench on {service}",
        query="index=bench",
        severity="high",
        category="application",
        group_by=("service",),
        threshold={"op": ">=", "value": 1},
        confidence=0.85,
    )
    executor = SleepingExecutor()
    deps = Deps(
        engine=engine,
        registry=Registry(
            [
                playbook("bench-low", "low", steps, args.step_ms),
                playbook("bench-high", "high", steps, args.step_ms),
            ],
            [rule],
        ),
        executors={"sleep": executor},
        rules={"bench": rule},
        backend=NothingFound(),
        interactions=Interactions(engine, roles, router, clock),
        router=router,
        clock=clock,
        redactor=Redactor("balanced"),
        limits=Limits(max_concurrent=args.cap, embedded=False),
        holder="bench",
    )
    return Remediation(deps, roles), executor


def open_incidents(remediation: Remediation, count: int, prefix: str) -> list[tuple[int, Category]]:
    engine = remediation.deps.engine
    now = remediation.deps.clock.now()
    categories = list(PLANS)
    made = []
    alerts = []
    for i in range(count):
        category = categories[i % len(categories)]
        made.append(category)
        a = alert(now, rule="bench", service=f"{prefix}-{i}", new_events=64, evidence=3)
        alerts.append(replace(a, category=category))
    policy = IngestPolicy(remediation.deps.router, timedelta(0), timedelta(seconds=60))
    with engine.begin() as conn:
        ids = ingest(conn, alerts, now, policy).created
    return list(zip(ids, made, strict=True))


async def press(remediation: Remediation, incident: int, category: Category) -> str:
    pid, _, actor, _ = PLANS[category]
    try:
        preview = await remediation.preview(incident, actor, pid)
        run = await remediation.start(incident, actor, "bench", preview.fingerprint, pid)
    except PolicyViolation as exc:
        text = str(exc)
        for code in ("concurrency", "category", "allowed", "role"):
            if code == "concurrency" and ("already running" in text or "are live" in text):
                return "refused:concurrency"
            if code == "category" and "disabled for the" in text:
                return "refused:category"
            if code == "allowed" and "not allowed in the" in text:
                return "refused:allowed"
            if code == "role" and "responder role" in text:
                return "refused:role"
        return f"refused:other:{text}"
    except (Conflict, BotError) as exc:
        return f"error:{exc}"
    return "approval" if run.status is RunStatus.AWAITING_APPROVAL else "run"


async def mixed(url: str, args: argparse.Namespace) -> dict[str, Any]:
    remediation, executor = build(url, args, steps=2)
    engine, now = remediation.deps.engine, remediation.deps.clock.now()
    for category, (_, fields, _, _) in PLANS.items():
        save_category(
            engine, CategoryPolicy(category.value, **fields), "console:root", "bench", now
        )
    incidents = await asyncio.to_thread(open_incidents, remediation, args.incidents, "mixed")
    started = time.perf_counter()
    answers = await asyncio.gather(*(press(remediation, i, c) for i, c in incidents))
    pressed_s = time.perf_counter() - started
    await remediation.engine.idle()
    wrong = 0
    for (_, category), answer in zip(incidents, answers, strict=True):
        expected = PLANS[category][3]
        capped = expected in ("run", "approval") and answer == "refused:concurrency"
        if answer != expected and not capped:
            wrong += 1
            print(f"  wrong: {category.value}: expected {expected}, got {answer}", file=sys.stderr)
    with engine.connect() as conn:
        statuses = Counter(r.status for r in conn.execute(RUNS.select()))
    return {
        "answers": Counter(answers),
        "statuses": dict(statuses),
        "wrong": wrong,
        "max_concurrent": executor.max_running,
        "pressed_s": pressed_s,
        "runs": sum(1 for a in answers if a in ("run", "approval")),
        "refused": sum(1 for a in answers if a.startswith("refused")),
    }


async def killswitch(url: str, args: argparse.Namespace) -> dict[str, Any]:
    remediation, executor = build(url, args, steps=5)
    incidents = await asyncio.to_thread(open_incidents, remediation, args.cap, "kill")
    await asyncio.gather(*(press(remediation, i, Category.APPLICATION) for i, _ in incidents))
    await asyncio.sleep(args.step_ms * 2.5 / 1000)  # mid-way: the third step is running
    switched = time.perf_counter()
    await asyncio.to_thread(
        set_kill_switch,
        remediation.deps.engine,
        True,
        "console:root",
        "bench",
        "bench",
        remediation.deps.clock.now(),
    )
    await remediation.engine.idle()
    stopped_ms = (time.perf_counter() - switched) * 1000
    late = [b for b in executor.began if b - switched > TARGET_STOP_MS / 1000]
    with remediation.deps.engine.connect() as conn:
        statuses = Counter(r.status for r in conn.execute(RUNS.select()))
    return {
        "stop_ms": stopped_ms,
        "late_steps": len(late),
        "statuses": dict(statuses),
        "max_concurrent": executor.max_running,
    }


def child(args: argparse.Namespace) -> None:
    async def both(url_a: str, url_b: str) -> dict[str, Any]:
        return {"mixed": await mixed(url_a, args), "kill": await killswitch(url_b, args)}

    with tempfile.TemporaryDirectory() as folder:
        if args.database_url:
            with postgres_schema(args.database_url) as a, postgres_schema(args.database_url) as b:
                result = asyncio.run(both(a, b))
        else:
            (Path(folder) / "a").mkdir()
            (Path(folder) / "b").mkdir()
            result = asyncio.run(both(sqlite_url(f"{folder}/a"), sqlite_url(f"{folder}/b")))
    print(json.dumps(result, default=dict))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--cap", type=int, default=10, help="max_concurrent_resolutions")
    parser.add_argument("--step-ms", type=int, default=150, help="how long each step sleeps")
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: SQLite)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    passed = ["--incidents", str(args.incidents), "--cap", str(args.cap)]
    passed += ["--step-ms", str(args.step_ms)]
    if args.database_url:
        passed += ["--database-url", args.database_url]
    results = [run_child(__file__, passed) for _ in range(args.runs)]
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{args.incidents} incidents pressed at once on {where}, cap {args.cap}, steps sleep "
        f"{args.step_ms} ms at the executor port; {args.runs} runs"
    )
    for r in results:
        m = r["mixed"]
        print(f"  answers {dict(m['answers'])}; runs now {m['statuses']}")
    runs = [r["mixed"]["runs"] for r in results]
    refused = [r["mixed"]["refused"] for r in results]
    highest = max(max(r["mixed"]["max_concurrent"], r["kill"]["max_concurrent"]) for r in results)
    stops = [r["kill"]["stop_ms"] for r in results]
    wrong = sum(r["mixed"]["wrong"] for r in results)
    late = sum(r["kill"]["late_steps"] for r in results)
    print(f"runs started or waiting for approval: {spread(runs, digits=0)}")
    print(f"refused: {spread(refused, digits=0)}")
    print(f"pressing all of them took {spread([r['mixed']['pressed_s'] for r in results], ' s')}")
    cap_ok = "ok" if highest <= args.cap else "MISSED"
    print(f"most steps running at once: {highest} (cap {args.cap}) {cap_ok}")
    stop_ok = "ok" if max(stops) < TARGET_STOP_MS and late == 0 else "MISSED"
    print(
        f"kill switch to every run stopped: {spread(stops, ' ms', 0)}; steps begun after "
        f"1 s: {late} {stop_ok}"
    )
    print(f"wrong decisions: {wrong}")
    emit(
        {
            "bench": "playbooks",
            "runs": median(runs),
            "refused": median(refused),
            "max_concurrent": highest,
            "killswitch_stop_ms": round(median(stops), 1),
            "wrong_decisions": wrong,
        }
    )


if __name__ == "__main__":
    main()
