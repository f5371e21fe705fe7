"""``run_bot.py incidents auto-resolve | approve | cancel-run | runs``: remediation from a shell.

The CLI acts as ``cli:<user>``. ``auto-resolve`` prints the plan (a dry run) and starts it only
after a yes (``--yes`` for scripts); the run's steps execute in this process, which waits for
them, and the running bot's scheduler verifies the run when its wait is over.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from bot.errors import PermanentError
from bot.settings import Settings
from playbooks.model import RunPreview, RunView

ACTIONS = ("auto-resolve", "approve", "cancel-run", "runs")


def add_run_commands(isub: Any) -> None:
    auto = isub.add_parser(
        "auto-resolve", help="show the plan that would fix an incident, then run it"
    )
    auto.add_argument("id", help="INC-n")
    auto.add_argument("--dry-run", action="store_true", help="only show the plan")
    auto.add_argument("--playbook", help="a playbook id (default: the best match)")
    auto.add_argument("--yes", action="store_true", help="start without asking")
    approve = isub.add_parser("approve", help="approve a run waiting for a second responder")
    approve.add_argument("run", type=int, help="the run's number")
    cancel = isub.add_parser("cancel-run", help="cancel a run before its next step")
    cancel.add_argument("run", type=int, help="the run's number")
    cancel.add_argument("reason", nargs="*", help="why")
    runs = isub.add_parser("runs", help="an incident's remediation runs")
    runs.add_argument("id", help="INC-n")


def print_preview(p: RunPreview) -> None:
    print(f"{p.human_id}: {p.playbook_id} ({p.playbook_title}) on {p.target}")
    print(f"risk {p.risk} · category {p.category} · verify after {p.verify_wait_s:g}s")
    print(f"confidence {p.confidence.value:.2f}: " + "; ".join(p.confidence.reasons))
    for step in (*p.steps, *p.rollback):
        undo = "" if step.reversible else " (cannot be undone)"
        print(f"  {step.phase} {step.index + 1}: {step.name}: {step.plan.description}{undo}")
    print(
        f"gate: {p.verdict.decision.value}" + (f": {p.verdict.reason}" if p.verdict.reason else "")
    )
    for check in p.verdict.checks:
        print(f"  [{'ok' if check.passed else 'NO'}] {check.code}: {check.text}")
    if p.alternatives:
        print("other playbooks: " + ", ".join(p.alternatives))
    print(f"fingerprint {p.fingerprint}")


def print_run(run: RunView) -> None:
    print(
        f"run {run.id}: {run.playbook_id} on {run.target} {run.status.value}"
        + (f": {run.detail}" if run.detail else "")
    )
    for s in run.steps:
        said = f"  {s.phase} {s.index + 1} {s.name}: {s.status}"
        if s.error:
            said += f": {s.error}"
        print(said)


async def run_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.wiring import Runtime

    runtime = Runtime(settings)
    await runtime.connect(attempts=3)
    remediation = runtime.operations.remediation
    assert remediation is not None
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "runs":
            found = await remediation.runs(args.id)
            for run in found:
                print_run(run)
            print(f"{len(found)} runs")
            return 0
        if args.action == "approve":
            run = await remediation.approve(args.run, actor, "cli")
        elif args.action == "cancel-run":
            run = await remediation.cancel(args.run, actor, "cli", " ".join(args.reason))
        else:
            preview = await remediation.preview(args.id, actor, args.playbook)
            print_preview(preview)
            if args.dry_run:
                return 0
            if not args.yes:
                if not sys.stdin.isatty():
                    raise PermanentError("not started: confirm with --yes when not at a terminal")
                answer = await asyncio.to_thread(input, "start it? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("not started")
                    return 0
            run = await remediation.start(
                args.id, actor, "cli", preview.fingerprint, preview.playbook_id
            )
        await remediation.engine.idle()  # the steps run here: wait for them
        print_run(await remediation.run(run.id))
        return 0
    finally:
        await runtime.stop()
