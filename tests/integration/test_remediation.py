"""Remediation on the embedded default, end to end: a generated scenario raises an incident, a
responder presses Auto-resolve, the run goes through the gate, its real executor ends the
scenario, verification re-runs the rule and the incident resolves. And every way it may not."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import Conflict, NotFound, PolicyViolation
from bot.store.breakers import disable_playbook
from bot.store.runtime_config import (
    CategoryPolicy,
    save_category,
    save_max_concurrent_in,
    set_kill_switch,
)
from playbooks.model import Decision, RunStatus
from playbooks.registry import Registry
from tests.remediation_env import Env, embedded


def kill(env: Env, on: bool, reason: str = "change freeze for the release") -> None:
    set_kill_switch(env.runtime.engine, on, "console:root", "console", reason, env.clock.now())


async def test_a_press_runs_the_playbook_verifies_it_and_resolves_the_incident(
    tmp_path: Path, database_url: str
) -> None:
    async with embedded(tmp_path, owner="console:olivia", database_url=database_url) as env:
        incident = await env.fire()
        preview = await env.remediation.preview(incident, "console:ann")
        assert preview.playbook_id == "demo-restart-upstream"
        assert preview.target == "service:checkout"
        assert preview.verdict.decision is Decision.RUN
        assert preview.confidence.value >= 0.90 and preview.confidence.reasons
        assert [s.plan.action for s in preview.steps] == ["end-scenario"]
        assert len(preview.fingerprint) == 64
        assert "restart-ecs-service" in preview.alternatives
        card = await env.runtime.operations.card(incident)
        assert "ready" in card.remediation_line
        assert any(a.label == "Auto-resolve" and not a.refused for a in card.actions)

        run = await env.press(incident)
        assert run.status is RunStatus.RUNNING
        await env.settle()
        assert env.run_row(run.id).status == "verifying"
        assert env.state(incident) == "open"
        assert await env.verify() == 1

        assert env.state(incident) == "resolved"
        row = env.run_row(run.id)
        assert row.status == "succeeded" and row.active_target is None
        assert "auto-resolved by demo-restart-upstream, verified at" in row.detail
        card = await env.runtime.operations.card(incident)
        assert card.remediation_line.startswith("auto-resolved by demo-restart-upstream")
        assert env.runtime.generator is not None and env.runtime.generator.running() == ()
        resolved = [r for r in env.audit(incident) if r.action == "auto_resolve"]
        assert resolved[0].actor == "playbook:demo-restart-upstream"
        assert [s.status for s in env.steps(run.id)] == ["succeeded"]


async def test_the_plan_must_be_the_one_shown_and_a_second_press_is_the_same_run(
    tmp_path: Path,
) -> None:
    async with embedded(tmp_path) as env:
        incident = await env.fire()
        with pytest.raises(Conflict, match="the plan changed since it was shown"):
            await env.remediation.start(incident, "console:ann", "console", "0" * 64)
        first = await env.press(incident, idempotency_key="console:press-1")
        again = await env.press(incident, idempotency_key="console:press-1")
        assert again.id == first.id
        await env.settle()
        with pytest.raises(NotFound, match="no run 999"):
            await env.remediation.run(999)
        with pytest.raises(NotFound, match="no incident INC-404"):
            await env.remediation.preview("INC-404", "console:ann")


async def test_a_viewer_cannot_start_a_run(tmp_path: Path) -> None:
    async with embedded(tmp_path) as env:
        incident = await env.fire()
        with pytest.raises(PolicyViolation, match="needs the responder role"):
            await env.press(incident, actor="console:vic")
        refused = [r for r in env.audit(incident) if r.action == "playbook_refused"]
        assert refused and refused[0].actor == "console:vic" and refused[0].result == "refused"
        assert env.runs() == []


async def test_the_kill_switch_refuses_a_press_and_says_why_on_the_card(tmp_path: Path) -> None:
    async with embedded(tmp_path) as env:
        incident = await env.fire()
        kill(env, True)
        await asyncio.sleep(0.6)  # the switch is cached for at most half a second
        card = await env.runtime.operations.card(incident)
        button = next(a for a in card.actions if a.kind.value == "auto_resolve")
        assert "kill switch on: change freeze" in button.refused
        with pytest.raises(PolicyViolation, match="kill switch is on"):
            await env.press(incident)
        assert "playbook_refused" in env.actions(incident)


async def test_low_confidence_waits_for_a_second_responder_who_is_not_the_presser(
    tmp_path: Path, database_url: str
) -> None:
    async with embedded(tmp_path, owner="console:olivia", database_url=database_url) as env:
        save_category(
            env.runtime.engine,
            CategoryPolicy("application", threshold=0.99),
            "console:root",
            "console",
            env.clock.now(),
        )
        incident = await env.fire()
        preview = await env.remediation.preview(incident, "console:ann")
        assert preview.verdict.decision is Decision.NEEDS_APPROVAL
        card = await env.runtime.operations.card(incident)
        assert any(a.label == "Run with approval" for a in card.actions)

        run = await env.press(incident)
        assert run.status is RunStatus.AWAITING_APPROVAL
        assert run.approval_expires_at == env.clock.now() + timedelta(minutes=15)
        card = await env.runtime.operations.card(incident)
        assert "waiting for a second responder to approve (requested by ann)" in (
            card.remediation_line
        )
        assert card.run_id == run.id
        with pytest.raises(PolicyViolation, match="cannot approve your own run"):
            await env.remediation.approve(run.id, "console:ann", "console")
        with pytest.raises(PolicyViolation, match="needs the responder role"):
            await env.remediation.approve(run.id, "console:vic", "console")
        approved = await env.remediation.approve(run.id, "console:bob", "console")
        assert approved.status is RunStatus.RUNNING and approved.approver == "console:bob"
        await env.settle()
        await env.verify()
        assert env.state(incident) == "resolved"
        actions = env.actions(incident)
        assert actions.count("playbook_approval_refused") == 2
        assert "playbook_requested" in actions and "playbook_approved" in actions


async def test_an_approval_binds_to_the_plan_it_was_asked_for(tmp_path: Path) -> None:
    async with embedded(tmp_path) as env:
        save_category(
            env.runtime.engine,
            CategoryPolicy("application", threshold=0.99),
            "console:root",
            "console",
            env.clock.now(),
        )
        incident = await env.fire()
        run = await env.press(incident)
        deps = env.remediation.deps
        book = deps.registry.get("demo-restart-upstream")
        assert book is not None
        changed = book.model_copy(
            update={
                "steps": (
                    book.steps[0].model_copy(update={"args": {"scenario": "app-error-storm"}}),
                )
            }
        )
        deps.registry = Registry([changed, *[p for p in deps.registry.all() if p is not book]])
        with pytest.raises(Conflict, match="the plan changed before it was approved"):
            await env.remediation.approve(run.id, "console:bob", "console")
        assert env.run_row(run.id).status == "cancelled"


async def test_an_unanswered_approval_expires(tmp_path: Path) -> None:
    async with embedded(tmp_path) as env:
        save_category(
            env.runtime.engine,
            CategoryPolicy("application", threshold=0.99),
            "console:root",
            "console",
            env.clock.now(),
        )
        incident = await env.fire()
        run = await env.press(incident)
        env.clock.advance(minutes=16)
        assert await env.expire() == 1
        row = env.run_row(run.id)
        assert row.status == "expired" and row.active_target is None
        assert "playbook_expired" in env.actions(incident)
        with pytest.raises(Conflict, match="only a run waiting for approval"):
            await env.remediation.approve(run.id, "console:bob", "console")


async def test_cooldown_concurrency_and_an_open_breaker_refuse(
    tmp_path: Path, database_url: str
) -> None:
    async with embedded(tmp_path, database_url=database_url) as env:
        incident = await env.fire()
        await env.press(incident)
        await env.settle()
        await env.verify()
        assert env.state(incident) == "resolved"
        # the same target again within its cooldown
        again = await env.fire_again("web-5xx-burst")
        with pytest.raises(PolicyViolation, match="cooling down"):
            await env.press(again)

        # at most one live run: a run waiting for approval holds the only place
        with env.runtime.engine.begin() as conn:
            save_max_concurrent_in(conn, 1, "console:root", "console", env.clock.now(), 10)
        save_category(
            env.runtime.engine,
            CategoryPolicy("infrastructure", threshold=0.99),
            "console:root",
            "console",
            env.clock.now(),
        )
        cpu = await env.fire("high-cpu")
        waiting = await env.press(cpu)
        assert waiting.status is RunStatus.AWAITING_APPROVAL
        memory = await env.fire("memory-pressure")
        with pytest.raises(PolicyViolation, match="already running"):
            await env.press(memory)
        await env.remediation.cancel(waiting.id, "console:bob", "console", "not now")

        disable_playbook(
            env.runtime.engine, "demo-recycle-worker", "3 failed runs", env.clock.now()
        )
        with pytest.raises(PolicyViolation, match="circuit breaker"):
            await env.press(memory)
        refusals = env.runtime.metrics.remediation_refusals
        assert refusals.labels("cooldown")._value.get() == 1
        assert refusals.labels("concurrency")._value.get() == 1
        assert refusals.labels("breaker")._value.get() == 1


async def test_a_run_left_running_by_a_dead_process_is_interrupted_not_rerun(
    tmp_path: Path,
) -> None:
    slow = {
        "id": "slow-fix",
        "title": "A fix that takes its time",
        "category": "application",
        "embedded_only": True,
        "matches": {"rules": ["web-5xx-burst"]},
        "target": "service:{service}",
        "steps": [
            {
                "name": "wait",
                "executor": "shell",
                "action": "run",
                "args": {"command": "sleep", "args": ["30"]},
                "timeout": "1m",
                "reversible": True,
            },
            {
                "name": "end it",
                "executor": "generator",
                "action": "end-scenario",
                "args": {"scenario": "web-5xx-burst"},
                "reversible": True,
            },
        ],
    }
    env_vars = {"BOT_PLAYBOOK_SHELL_ALLOWLIST": "sleep"}
    async with embedded(tmp_path, playbooks=[slow], env=env_vars) as env:
        incident = await env.fire()
        run = await env.press(incident, playbook_id="slow-fix")
        for _ in range(100):
            if env.steps(run.id):
                break
            await asyncio.sleep(0.05)
        await env.remediation.engine.stop()  # the process dies in step 1
        from sqlalchemy import update

        from bot.store.runs import RUNS

        with env.runtime.engine.begin() as conn:  # as another process would find it
            conn.execute(update(RUNS).where(RUNS.c.id == run.id).values(claimed_by="gone:1"))
        assert await env.interrupt() == 1
        row = env.run_row(run.id)
        assert row.status == "interrupted"
        assert row.detail == "interrupted at step 1 of 2: re-plan"
        assert [s.status for s in env.steps(run.id)] == ["interrupted"]
        card = await env.runtime.operations.card(incident)
        assert "interrupted at step 1 of 2: re-plan" in card.remediation_line
        assert any(a.label == "Re-plan" for a in card.actions)
        assert env.runtime.generator is not None
        assert "web-5xx-burst" in env.runtime.generator.running()  # step 2 never ran
        assert await env.interrupt() == 0


async def test_the_rest_api_previews_starts_and_reports_runs(tmp_path: Path) -> None:
    from httpx import ASGITransport, AsyncClient

    from bot.server import create_app

    async with embedded(tmp_path) as env:
        incident = await env.fire()
        app = create_app(env.runtime)
        env.runtime.db.ready = True
        headers = {"X-Bot-User": "ann"}
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client:
            dry = await client.post(
                f"/api/v1/incidents/INC-{incident}/auto-resolve", json={}, headers=headers
            )
            assert dry.status_code == 200, dry.text
            plan = dry.json()["plan"]
            assert plan["verdict"]["decision"] == "run" and plan["confidence"]["reasons"]
            stale = await client.post(
                f"/api/v1/incidents/INC-{incident}/auto-resolve",
                json={"dry_run": False, "fingerprint": "f" * 64},
                headers=headers,
            )
            assert stale.status_code == 409 and "plan changed" in stale.json()["error"]
            started = await client.post(
                f"/api/v1/incidents/INC-{incident}/auto-resolve",
                json={"dry_run": False, "fingerprint": plan["fingerprint"]},
                headers={**headers, "Idempotency-Key": "k1"},
            )
            assert started.status_code == 200, started.text
            run = started.json()["run"]
            await env.settle()
            listed = await client.get(f"/api/v1/incidents/INC-{incident}/runs", headers=headers)
            assert [r["id"] for r in listed.json()["items"]] == [run["id"]]
            one = await client.get(f"/api/v1/runs/{run['id']}", headers=headers)
            assert one.json()["status"] == "verifying" and one.json()["steps"][0]["status"] == (
                "succeeded"
            )
            missing = await client.get("/api/v1/runs/4242", headers=headers)
            assert missing.status_code == 404 and "no run 4242" in missing.json()["error"]
            batch = await client.post(
                "/api/v1/incidents/batch-resolve",
                json={"incidents": [f"INC-{incident}", "INC-999"], "dry_run": True},
                headers=headers,
            )
            items = batch.json()["items"]
            assert items[0]["ok"] and not items[1]["ok"] and items[1]["kind"] == "not_found"
            cancel = await client.post(f"/api/v1/runs/{run['id']}/cancel", json={}, headers=headers)
            assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
            again = await client.post(f"/api/v1/runs/{run['id']}/approve", headers=headers)
            assert again.status_code == 409
