"""Pure renderers for remediation in Teams: the Auto-resolve confirmation card (the dry-run
plan with Confirm and Back) that answers the button's ``invoke``, and one-line answers."""

from __future__ import annotations

from typing import Any

from bot.store.runtime_config import KillSwitch
from integrations.teams.render import render_lines
from playbooks.model import Decision, PlannedStep, RunPreview, RunStatus, RunView

CONFIRM_VERB = "auto_resolve_confirm"
BACK_VERB = "auto_resolve_back"
MAX_PARAM = 120

Json = dict[str, Any]


def _step(step: PlannedStep) -> str:
    plan = step.plan
    params = ", ".join(f"{k}={_short(str(v))}" for k, v in plan.params)
    undo = "" if step.reversible else " · cannot be undone"
    return (
        f"{step.index + 1}. {step.name}: {plan.description} — {plan.executor}.{plan.action} "
        f"on {plan.target}, timeout {plan.timeout_s:g}s{undo}" + (f" ({params})" if params else "")
    )


def verdict_line(preview: RunPreview) -> str:
    verdict = preview.verdict
    if verdict.decision is Decision.RUN:
        return "Gate: allowed, every check passed."
    if verdict.decision is Decision.NEEDS_APPROVAL:
        return f"Gate: needs a second responder's approval: {verdict.reason}"
    return "Gate: refused: " + "; ".join(c.text for c in verdict.failed)


def plan_lines(preview: RunPreview) -> list[str]:
    lines = [
        f"{preview.playbook_title} ({preview.playbook_id}) on {preview.target}",
        f"Risk {preview.risk} · category {preview.category}",
        f"Confidence {preview.confidence.value:.0%}: " + "; ".join(preview.confidence.reasons),
        "Steps:",
        *(_step(s) for s in preview.steps),
    ]
    if preview.rollback:
        lines.append("Rollback if it fails:")
        lines.extend(_step(s) for s in preview.rollback)
    if preview.verify_wait_s:
        lines.append(
            f"Then it waits {preview.verify_wait_s:g}s and runs the incident's rule again: "
            "cleared resolves the incident, not cleared rolls back and pages."
        )
    lines.append(verdict_line(preview))
    if preview.alternatives:
        lines.append("Other playbooks that match: " + ", ".join(preview.alternatives))
    return lines


def confirm_card(preview: RunPreview) -> Json:
    """The plan; Confirm (or Run with approval) unless refused, and Back to the incident card."""
    card = render_lines(f"Auto-resolve {preview.human_id}?", plan_lines(preview))
    data = {
        "incident_id": preview.incident_id,
        "fingerprint": preview.fingerprint,
        "playbook_id": preview.playbook_id,
    }
    actions: list[Json] = []
    if preview.verdict.decision is not Decision.REFUSED:
        label = (
            "Run with approval"
            if preview.verdict.decision is Decision.NEEDS_APPROVAL
            else "Confirm"
        )
        actions.append(
            {
                "type": "Action.Execute",
                "title": label,
                "verb": CONFIRM_VERB,
                "data": data,
                "style": "positive",
            }
        )
    actions.append(
        {
            "type": "Action.Execute",
            "title": "Back",
            "verb": BACK_VERB,
            "data": {"incident_id": preview.incident_id},
        }
    )
    card["actions"] = actions
    return card


def run_started(run: RunView) -> str:
    if run.status is RunStatus.AWAITING_APPROVAL:
        return (
            f"RUN-{run.id} ({run.playbook_id}) waits for a second responder to approve it "
            "(you cannot approve your own run)."
        )
    return f"RUN-{run.id} ({run.playbook_id}) started; this card shows its progress."


def run_changed(run: RunView, verb: str) -> str:
    return f"RUN-{run.id} ({run.playbook_id}) {verb}: now {run.status.value.replace('_', ' ')}."


def kill_switch_text(switch: KillSwitch) -> str:
    if not switch.on:
        return "Kill switch is off: remediation may run where policy allows."
    return f"Kill switch is {switch.describe()}"


def _short(text: str) -> str:
    return text if len(text) <= MAX_PARAM else text[: MAX_PARAM - 1] + "…"
