"""When a remediation does not work: a failed step, a fix that verification does not see, a
playbook that keeps failing, the kill switch pressed mid-run. Pages go to a PagerDuty fake over
TLS through the real SDK; steps run through the real shell and generator executors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PolicyViolation
from bot.store.breakers import disabled_playbooks
from bot.store.runtime_config import set_kill_switch
from tests.fakes.pagerduty import FakePagerDuty, make_tls
from tests.remediation_env import Env, embedded

ROUTING_KEY = "R0UT1NGKEYREMEDIATION00000000001"


def shell(name: str, command: str, *args: str, undo: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": name,
        "executor": "shell",
        "action": "run",
        "args": {"command": command, "args": list(args)},
        "timeout": "30s",
        "reversible": True,
    }
    if undo:
        step["undo"] = undo
    return step


def playbook(pid: str, steps: list[dict[str, Any]], rollback: list[dict[str, Any]] = ()) -> dict:  # type: ignore[assignment, type-arg]
    return {
        "id": pid,
        "title": f"test playbook {pid}",
        "category": "application",
        "embedded_only": True,
        "matches": {"rules": ["web-5xx-burst"]},
        "target": "service:{service}",
        "steps": steps,
        "rollback": list(rollback),
        "verify": {"wait": "30s", "timeout": "2m"},
        "cooldown": "0s",
    }


NO_FIX = playbook(
    "no-fix",
    [shell("drain", "true", undo="undrain")],
    [shell("undrain", "true")],
)
BROKEN = playbook(
    "broken",
    [shell("drain", "true", undo="undrain"), shell("restart", "false")],
    [shell("undrain", "true")],
)
SLOW = playbook(
    "slow",
    [shell("first", "sleep", "1"), shell("second", "true"), shell("third", "true")],
)


@pytest.fixture
def pagerduty(tmp_path: Path) -> Iterator[tuple[FakePagerDuty, dict[str, str]]]:
    tls = make_tls(tmp_path)
    with FakePagerDuty(tls) as pd:
        yield (
            pd,
            {
                "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                "PAGERDUTY_EVENTS_URL": pd.url,
                "PAGERDUTY_API_URL": pd.url,
                "PAGERDUTY_CA_FILE": str(tls.ca_file),
                "BOT_PLAYBOOK_SHELL_ALLOWLIST": "true,false,sleep",
            },
        )


async def deliver(env: Env) -> None:
    for _ in range(3):
        await env.runtime.outbox.deliver_due()


async def test_a_fix_verification_does_not_see_is_rolled_back_and_pages(
    tmp_path: Path, pagerduty: tuple[FakePagerDuty, dict[str, str]]
) -> None:
    pd, env_vars = pagerduty
    async with embedded(tmp_path, [NO_FIX], owner="console:olivia", env=env_vars) as env:
        incident = await env.fire()
        run = await env.press(incident, playbook_id="no-fix")
        await env.settle()
        assert env.run_row(run.id).status == "verifying"
        await env.verify(65)  # the scenario still runs: the rule still fires

        row = env.run_row(run.id)
        assert row.status == "rolled_back", row.detail
        assert "not verified: rule web-5xx-burst still fires" in row.detail
        steps = [(s.phase, s.name, s.status) for s in env.steps(run.id)]
        assert steps == [("step", "drain", "succeeded"), ("rollback", "undrain", "succeeded")]
        assert env.state(incident) == "open"
        await deliver(env)
        (page,) = pd.accepted("trigger")
        assert f"INC-{incident}" in page.dedup_key
        texts = [d.payload_json for d in env.directs() if d.channel == "olivia"]
        assert texts and "rolled back" in texts[-1]
        assert "playbook_rolled_back" in env.actions(incident)


async def test_a_failed_step_rolls_back_what_the_steps_before_it_did(
    tmp_path: Path, pagerduty: tuple[FakePagerDuty, dict[str, str]]
) -> None:
    _, env_vars = pagerduty
    async with embedded(tmp_path, [BROKEN], env=env_vars) as env:
        incident = await env.fire()
        run = await env.press(incident, playbook_id="broken")
        await env.settle()
        row = env.run_row(run.id)
        assert row.status == "rolled_back"
        assert row.detail.startswith("step 2 of 2 (restart) failed: false exited with 1")
        steps = [(s.phase, s.name, s.status) for s in env.steps(run.id)]
        assert steps == [
            ("step", "drain", "succeeded"),
            ("step", "restart", "failed"),
            ("rollback", "undrain", "succeeded"),
        ]
        finished = [r for r in env.audit(incident) if r.action == "playbook_step_finished"]
        assert '"duration_ms"' in finished[0].data_json and '"output"' in finished[0].data_json


async def test_a_playbook_that_keeps_failing_opens_its_breaker_and_pages(
    tmp_path: Path, pagerduty: tuple[FakePagerDuty, dict[str, str]]
) -> None:
    pd, env_vars = pagerduty
    async with embedded(tmp_path, [BROKEN], env=env_vars, breaker_failures=2) as env:
        incident = await env.fire()
        for _ in range(2):
            await env.press(incident, playbook_id="broken")
            await env.settle()
        assert "3" not in disabled_playbooks(env.runtime.engine).get("broken", "x3")
        assert "2 failed runs" in disabled_playbooks(env.runtime.engine)["broken"]
        with pytest.raises(PolicyViolation, match="circuit breaker"):
            await env.press(incident, playbook_id="broken")
        await deliver(env)
        assert pd.accepted("trigger")  # a person was paged
        assert "playbook_disabled" in [r.action for r in env.audit()]


async def test_the_kill_switch_mid_run_stops_the_next_step_within_a_second(
    tmp_path: Path, pagerduty: tuple[FakePagerDuty, dict[str, str]]
) -> None:
    _, env_vars = pagerduty
    async with embedded(tmp_path, [SLOW], owner="console:olivia", env=env_vars) as env:
        incident = await env.fire()
        run = await env.press(incident, playbook_id="slow")
        await asyncio.sleep(0.2)  # step 1 (sleep 1) is running
        set_kill_switch(
            env.runtime.engine, True, "console:root", "console", "stop everything", env.clock.now()
        )
        pressed = time.perf_counter()
        await env.settle()
        stopped_after = time.perf_counter() - pressed
        row = env.run_row(run.id)
        assert row.status == "cancelled"
        assert row.detail.startswith("stopped by the kill switch before step 2")
        assert [s.name for s in env.steps(run.id)] == ["first"]  # no step began after it
        assert stopped_after < 1.5  # the step in flight (≤ 1 s) plus the switch's cache
        assert any("stopped by the kill switch" in d.payload_json for d in env.directs())


async def test_a_cancel_lets_the_running_step_finish_and_no_other_begin(
    tmp_path: Path, pagerduty: tuple[FakePagerDuty, dict[str, str]]
) -> None:
    _, env_vars = pagerduty
    async with embedded(tmp_path, [SLOW], env=env_vars) as env:
        incident = await env.fire()
        run = await env.press(incident, playbook_id="slow")
        await asyncio.sleep(0.2)  # step 1 (sleep 1) is running
        cancelled = await env.remediation.cancel(run.id, "console:bob", "console", "wrong host")
        assert cancelled.status.value == "cancelled"
        assert cancelled.detail == "cancelled by console:bob: wrong host (no further step begins)"
        await env.settle()
        assert env.run_row(run.id).status == "cancelled"
        assert [(s.name, s.status) for s in env.steps(run.id)] == [("first", "succeeded")]
        finished = [r for r in env.audit(incident) if r.action == "playbook_step_finished"]
        assert len(finished) == 1 and "step 1 of 3 (first) succeeded" in finished[0].detail
