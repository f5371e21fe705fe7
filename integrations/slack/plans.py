"""Pure renderers for remediation: the dry-run plan (in the Auto-resolve dialog and in the
answer to ``/incident auto-resolve``) and what the bot says about runs and the kill switch."""

from __future__ import annotations

from typing import Any

from bot.domain.incident import human_id
from bot.store.runtime_config import KillSwitch
from integrations.slack.blockkit import (
    MAX_SECTION,
    Block,
    button,
    clip,
    context,
    escape,
    mentions,
    plain,
    section,
)
from integrations.slack.payloads import ConfirmValue, PlanMetadata
from playbooks.model import Decision, PlannedStep, RunPreview, RunStatus, RunView

PLAN_MODAL = "auto-resolve-modal"
CONFIRM_ACTION = "auto_resolve_confirm"
MAX_TITLE = 24
MAX_PARAM = 120

VERDICT = {
    Decision.RUN: ":white_check_mark: *The gate allows it:* every check passed.",
    Decision.NEEDS_APPROVAL: ":raised_hand: *Needs a second responder's approval:* {reason}",
    Decision.REFUSED: ":no_entry: *Refused:* {reason}",
}


def submit_label(preview: RunPreview) -> str:
    return "Run with approval" if preview.verdict.decision is Decision.NEEDS_APPROVAL else "Confirm"


def _step(step: PlannedStep) -> str:
    plan = step.plan
    params = ", ".join(f"{k}={clip(str(v), MAX_PARAM)}" for k, v in plan.params)
    undo = "" if step.reversible else " · *cannot be undone*"
    retries = f" · {step.retries} retries" if step.retries else ""
    return (
        f"{step.index + 1}. *{escape(step.name)}*: {escape(plan.description)}\n"
        f"      `{escape(plan.executor)}.{escape(plan.action)}` on `{escape(plan.target)}`"
        f" · timeout {plan.timeout_s:g}s{retries}{undo}"
        + (f"\n      {escape(params)}" if params else "")
    )


def plan_blocks(preview: RunPreview) -> list[Block]:
    """Steps, targets, parameters, risk, confidence and the gate's verdict."""
    name = human_id(preview.incident_id)
    confidence = preview.confidence
    reasons = "\n".join(f"• {escape(r)}" for r in confidence.reasons)
    verdict = VERDICT[preview.verdict.decision].format(reason=escape(preview.verdict.reason))
    failed = [c for c in preview.verdict.failed if c.text != preview.verdict.reason]
    if failed:
        verdict += "\n" + "\n".join(f"• {escape(c.text)}" for c in failed)
    blocks: list[Block] = [
        section(
            f"*{escape(preview.playbook_title)}* (`{escape(preview.playbook_id)}`) for {name}\n"
            f"Target `{escape(preview.target)}` · risk *{escape(preview.risk)}* · "
            f"category {escape(preview.category)}"
        ),
        section(f"*Confidence {confidence.value:.0%}*\n{reasons}".strip()),
        section(clip("*Steps*\n" + "\n".join(_step(s) for s in preview.steps), MAX_SECTION)),
    ]
    if preview.rollback:
        rollback = "\n".join(_step(s) for s in preview.rollback)
        blocks.append(section(clip(f"*Rollback if it fails*\n{rollback}", MAX_SECTION)))
    if preview.verify_wait_s:
        blocks.append(
            context(
                f"Then it waits {preview.verify_wait_s:g}s and runs the incident's rule again: "
                "cleared resolves the incident, not cleared rolls back and pages."
            )
        )
    blocks.append(section(mentions(verdict)))
    if preview.alternatives:
        others = ", ".join(f"`{escape(a)}`" for a in preview.alternatives)
        blocks.append(context(f"Other playbooks that match: {others}"))
    return blocks


def _frame(metadata: PlanMetadata, submit: str = "") -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": PLAN_MODAL,
        "private_metadata": metadata.model_dump_json(),
        "title": plain(
            clip(f"Auto-resolve {human_id(metadata.incident_id)}", MAX_TITLE), MAX_TITLE
        ),
        "close": plain("Close" if not submit else "Cancel", MAX_TITLE),
    }
    if submit:
        view["submit"] = plain(submit, MAX_TITLE)
    return view


def planning_view(metadata: PlanMetadata) -> dict[str, Any]:
    """Opened at once (the trigger expires after 3 s); the plan replaces it when ready."""
    name = human_id(metadata.incident_id)
    return {**_frame(metadata), "blocks": [section(f":hourglass: Planning a run for {name}…")]}


def plan_view(metadata: PlanMetadata, preview: RunPreview) -> dict[str, Any]:
    """The plan; Confirm (or Run with approval) only when the gate does not refuse it."""
    refused = preview.verdict.decision is Decision.REFUSED
    fixed = PlanMetadata(
        incident_id=metadata.incident_id,
        playbook_id=preview.playbook_id,
        fingerprint=preview.fingerprint,
        channel=metadata.channel,
        message_ts=metadata.message_ts,
        key=metadata.key,
    )
    return {
        **_frame(fixed, "" if refused else submit_label(preview)),
        "blocks": plan_blocks(preview),
    }


def problem_view(metadata: PlanMetadata, text: str) -> dict[str, Any]:
    return {**_frame(metadata), "blocks": [section(text)]}


def confirm_blocks(preview: RunPreview) -> list[Block]:
    """The plan as an answer to ``/incident auto-resolve``, with its Confirm button."""
    blocks = plan_blocks(preview)
    if preview.verdict.decision is not Decision.REFUSED:
        value = ConfirmValue(preview.incident_id, preview.fingerprint, preview.playbook_id)
        blocks.append(
            {
                "type": "actions",
                "block_id": "auto-resolve-confirm",
                "elements": [button(CONFIRM_ACTION, submit_label(preview), str(value), "primary")],
            }
        )
    return blocks


def run_started(run: RunView) -> str:
    name = human_id(run.incident_id)
    if run.status is RunStatus.AWAITING_APPROVAL:
        return (
            f":raised_hand: Run RUN-{run.id} ({escape(run.playbook_id)}) on {name} waits for a "
            "second responder to approve it on the card (you cannot approve your own run)."
        )
    return (
        f":gear: Run RUN-{run.id} ({escape(run.playbook_id)}) on {name} started; "
        "the card shows its progress step by step."
    )


def run_changed(run: RunView, verb: str) -> str:
    return f"RUN-{run.id} ({escape(run.playbook_id)}) on {human_id(run.incident_id)} {verb}: " + (
        f"now {run.status.value.replace('_', ' ')}"
    )


def kill_switch_text(switch: KillSwitch) -> str:
    if not switch.on:
        return ":large_green_circle: Kill switch is *off*: remediation may run where policy allows."
    return f":octagonal_sign: Kill switch is *{mentions(escape(switch.describe()))}*"
