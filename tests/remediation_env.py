"""A whole bot on its embedded default, for remediation tests: generated logs, the local search
backend, the shipped rules and playbooks, real executors. Nothing runs in the background; a test
fires a scenario, runs its rule, presses, and runs the chores itself with a clock it moves."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot.settings import load_settings
from bot.store.repo import AUDIT, INCIDENTS, OUTBOX, TIMELINE
from bot.store.runs import RUNS, STEPS
from bot.wiring import Runtime
from detectors.model import Rule
from detectors.rules import load_rules
from playbooks.chores import expire_approvals, interrupt_stranded, verify_due
from playbooks.service import Remediation
from tests.conftest import FakeClock

RESPONDERS = ("console:ann", "console:bob")
ROLES = {
    "default_role": "viewer",
    "roles": {"admin": ["console:root"], "responder": list(RESPONDERS)},
}


@dataclass
class Env:
    runtime: Runtime
    clock: FakeClock

    @property
    def remediation(self) -> Remediation:
        assert self.runtime.operations.remediation is not None
        return self.runtime.operations.remediation

    async def fire(self, scenario: str = "web-5xx-burst", rule: str | None = None) -> int:
        """Start a generated scenario and run its rule: the new incident's number."""
        generator = self.runtime.generator
        assert generator is not None
        generator.start(scenario, self.clock.now())
        self.clock.advance(1)
        summary = await self.runtime.runner.run(rule or scenario)
        assert summary.error == "", summary.error
        (incident,) = summary.result.created
        return incident

    async def fire_again(self, scenario: str, rule: str | None = None) -> int:
        """Start a scenario again: the incident it reopens (or opens)."""
        generator = self.runtime.generator
        assert generator is not None
        generator.start(scenario, self.clock.now())
        self.clock.advance(1)
        summary = await self.runtime.runner.run(rule or scenario)
        (incident,) = summary.result.new_or_reopened
        return incident

    async def press(self, incident: int, actor: str = "console:ann", **kw: Any) -> Any:
        """Preview, then confirm the plan shown (what every surface does)."""
        preview = await self.remediation.preview(incident, actor, kw.pop("playbook_id", None))
        return await self.remediation.start(
            incident, actor, "console", preview.fingerprint, preview.playbook_id, **kw
        )

    async def settle(self) -> None:
        await self.remediation.engine.idle()

    async def analyse(self, incident: int) -> None:
        """Root-cause analysis, then what follows it (an automatic run, if allowed)."""
        await self.runtime.enricher.analyse(incident)
        await asyncio.gather(*list(self.runtime._background))
        await self.settle()

    async def verify(self, seconds: float = 120) -> int:
        """Let the verification wait pass (the generator keeps writing what still runs)."""
        self.clock.advance(seconds)
        if self.runtime.generator is not None:
            self.runtime.generator.advance(self.clock.now())
        return await verify_due(self.remediation.engine)

    async def expire(self) -> int:
        return await expire_approvals(self.remediation.engine)

    async def interrupt(self) -> int:
        return await interrupt_stranded(
            self.remediation.engine, self.runtime.settings.lease_heartbeat * 3
        )

    def state(self, incident: int) -> str:
        with self.runtime.engine.connect() as conn:
            return str(
                conn.execute(select(INCIDENTS.c.state).where(INCIDENTS.c.id == incident)).scalar()
            )

    def rows(self, table: Any, **where: Any) -> list[Any]:
        query = select(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(query.order_by(table.c.id)))

    def audit(self, incident: int | None = None) -> list[Any]:
        return self.rows(AUDIT) if incident is None else self.rows(AUDIT, incident_id=incident)

    def actions(self, incident: int) -> list[str]:
        return [r.action for r in self.audit(incident)]

    def directs(self) -> list[Any]:
        return self.rows(OUTBOX, kind="direct")

    def timeline(self, incident: int) -> list[str]:
        return [r.text for r in self.rows(TIMELINE, incident_id=incident)]

    def runs(self) -> list[Any]:
        return self.rows(RUNS)

    def run_row(self, run_id: int) -> Any:
        return self.rows(RUNS, id=run_id)[0]

    def steps(self, run_id: int) -> list[Any]:
        return self.rows(STEPS, run_id=run_id)


def write_playbooks(folder: Path, playbooks: Sequence[Mapping[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "test-playbooks.yaml"
    path.write_text(yaml.safe_dump({"playbooks": [dict(p) for p in playbooks]}, sort_keys=False))
    return folder


def shipped_rules(
    owner: str = "", changes: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Rule]:
    """The shipped rules, with ``owner`` and ``changes`` (``{"web-5xx-burst": {"confidence":
    0.7}}``) for a test."""
    changes = changes or {}
    rules = load_rules([], include_shipped=True, local_spl=True)
    if owner:
        rules = [r.model_copy(update={"owner": owner}) for r in rules]
    return [r.model_copy(update=dict(changes.get(r.id, {}))) for r in rules]


def _files(folder: Path, playbooks: Sequence[Mapping[str, Any]], settings: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    roles = folder / "roles.yaml"
    roles.write_text(json.dumps(ROLES))
    if playbooks:
        settings["playbooks_path"] = str(write_playbooks(folder / "playbooks", playbooks))
    return roles


@asynccontextmanager
async def embedded(
    tmp_path: Path,
    playbooks: Sequence[Mapping[str, Any]] = (),
    owner: str = "",
    env: Mapping[str, str] | None = None,
    rules: list[Rule] | None = None,
    **settings: Any,
) -> AsyncIterator[Env]:
    """A runtime on its embedded default with the roles above (ann and bob respond)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("BOT_", "SPLUNK_", "PAGERDUTY_", "SLACK_", "TEAMS_")):
            del os.environ[name]
    os.environ.update(env or {})
    roles = _files(tmp_path, playbooks, settings)
    config = load_settings(
        database_url=settings.pop("database_url", f"sqlite:///{tmp_path / 'bot.db'}"),
        local_events_path=tmp_path / "events.db",
        generator=False,
        roles_file=roles,
        **settings,
    )
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    runtime = Runtime(
        config, clock=clock, rules=rules if rules is not None else shipped_rules(owner)
    )
    try:
        await runtime.connect(attempts=1)
        assert runtime.lease.renew(clock.now())  # this process runs the rules
        yield Env(runtime, clock)
    finally:
        await runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
