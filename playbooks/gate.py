"""The gate: whether a playbook run may start (or its next step begin) now. One pure function.

:func:`decide` runs every check in a fixed order and records each one, passed or not, with a
sentence for people. The decision:

- **refused** when any check failed (``Verdict.failed`` is non-empty exactly then);
- **needs approval** when nothing failed but a second responder must approve first: the
  confidence is below the category's threshold, the risk is high, a step cannot be undone, or
  the run is already in approval mode. Those conditions are recorded as passed checks (they do
  not stop the run, they ask for an approval) and the ``approval`` check says who must do what;
- **run** otherwise.

Checks, in order: ``kill_switch``, ``role``, ``category``, ``allowed``, ``breaker``,
``embedded_only``, ``concurrency``, ``target_busy``, ``cooldown``; then for automatic runs
``auto``, ``confidence``, ``reversible``, ``risk`` (an automatic run never asks for an approval:
any of them failing refuses it); for runs a person started ``confidence``, ``reversible``,
``risk``, then ``approval`` or ``self_approval``.

The engine asks before the first step and again before every step, so ``live_runs``,
``target_busy`` and ``last_finished_on_target`` describe the *other* runs, not the one being
decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.runtime_config import CategoryPolicy, KillSwitch
from playbooks.model import Check, Confidence, Decision, RunMode, Verdict
from playbooks.spec import Playbook, Risk


@dataclass(frozen=True, slots=True)
class GateFacts:
    playbook: Playbook
    mode: RunMode
    actor: str  # who asks now (the presser, the approver, or "bot" for automatic runs)
    role_ok: bool  # the actor holds the responder role
    requested_by: str  # who pressed Auto-resolve
    approver: str  # who approved ("" while nobody has)
    kill: KillSwitch
    policy: CategoryPolicy
    confidence: Confidence
    rule_auto: bool  # the incident's rule says auto_resolve: true
    live_runs: int  # other live runs across all replicas
    max_concurrent: int
    target_busy: bool  # another live run acts on the same target
    last_finished_on_target: datetime | None
    breaker_reason: str  # why the circuit breaker disabled this playbook ("" when closed)
    now: datetime
    embedded: bool  # the bot runs on its embedded default


def _at(when: datetime, now: datetime) -> str:
    if when.date() == now.date():
        return f"{when:%H:%M} UTC"
    return f"{when:%Y-%m-%d %H:%M} UTC"


def _span(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _common(f: GateFacts) -> list[Check]:
    pb, policy, cat = f.playbook, f.policy, f.policy.category
    checks = []
    if f.kill.on:
        since = f" since {_at(f.kill.at, f.now)}" if f.kill.at else ""
        text = f"kill switch is on{since} by {f.kill.by}: {f.kill.reason}"
    else:
        text = "kill switch is off"
    checks.append(Check("kill_switch", not f.kill.on, text))
    checks.append(
        Check(
            "role",
            f.role_ok,
            f"{f.actor} holds the responder role"
            if f.role_ok
            else f"{f.actor} needs the responder role to run a playbook",
        )
    )
    checks.append(
        Check(
            "category",
            policy.enabled,
            f"remediation is enabled for the {cat} category"
            if policy.enabled
            else f"remediation is disabled for the {cat} category",
        )
    )
    allowed = not policy.allowed_playbooks or pb.id in policy.allowed_playbooks
    if not pb.enabled:
        checks.append(Check("allowed", False, f"playbook {pb.id} is disabled in its file"))
    elif allowed:
        checks.append(Check("allowed", True, f"playbook {pb.id} is allowed in the {cat} category"))
    else:
        listed = ", ".join(policy.allowed_playbooks)
        checks.append(
            Check(
                "allowed",
                False,
                f"playbook {pb.id} is not allowed in the {cat} category (allowed: {listed})",
            )
        )
    checks.append(
        Check(
            "breaker",
            not f.breaker_reason,
            f"playbook {pb.id} is disabled by its circuit breaker: {f.breaker_reason}"
            if f.breaker_reason
            else "circuit breaker is closed",
        )
    )
    if pb.embedded_only:
        checks.append(
            Check(
                "embedded_only",
                f.embedded,
                "runs on the embedded default"
                if f.embedded
                else f"playbook {pb.id} runs only on the embedded default, not here",
            )
        )
    full = f.live_runs >= f.max_concurrent
    checks.append(
        Check(
            "concurrency",
            not full,
            f"{f.live_runs} remediations already running (limit {f.max_concurrent})"
            if full
            else f"{f.live_runs} of {f.max_concurrent} remediations running",
        )
    )
    checks.append(
        Check(
            "target_busy",
            not f.target_busy,
            "another remediation is already running on this target"
            if f.target_busy
            else "no other remediation on this target",
        )
    )
    checks.append(_cooldown(f))
    return checks


def _cooldown(f: GateFacts) -> Check:
    last = f.last_finished_on_target
    if last is None:
        return Check("cooldown", True, "no earlier run on this target")
    ends = last + f.playbook.cooldown
    if ends > f.now:
        return Check(
            "cooldown",
            False,
            f"this target is cooling down until {_at(ends, f.now)} "
            f"(cooldown {_span(f.playbook.cooldown)} after the run that finished at "
            f"{_at(last, f.now)})",
        )
    return Check("cooldown", True, f"cooldown after the last run ended at {_at(ends, f.now)}")


def _confidence_text(f: GateFacts) -> tuple[bool, str]:
    value, threshold = f.confidence.value, f.policy.threshold
    if value >= threshold:
        return (
            True,
            f"confidence {value:.2f} meets the {f.policy.category} threshold {threshold:.2f}",
        )
    return (
        False,
        f"confidence {value:.2f} is below the {f.policy.category} threshold {threshold:.2f}",
    )


def _irreversible(f: GateFacts) -> str:
    names = ", ".join(repr(s.name) for s in f.playbook.irreversible_steps)
    return f"step {names} cannot be undone" if names else ""


def _automatic(f: GateFacts) -> list[Check]:
    pb, cat = f.playbook, f.policy.category
    if not (f.rule_auto or pb.auto):
        auto = Check(
            "auto", False, f"automatic runs need auto: true on the rule or on playbook {pb.id}"
        )
    elif not f.policy.auto:
        auto = Check("auto", False, f"automatic remediation is off for the {cat} category")
    else:
        who = "the rule" if f.rule_auto else f"playbook {pb.id}"
        auto = Check("auto", True, f"{who} and the {cat} category allow automatic runs")
    ok, text = _confidence_text(f)
    undo = _irreversible(f)
    high = pb.risk is Risk.HIGH
    return [
        auto,
        Check("confidence", ok, text if ok else f"{text}: no automatic run"),
        Check(
            "reversible",
            not undo,
            f"{undo}: it never runs automatically" if undo else "every step can be undone",
        ),
        Check(
            "risk",
            not high,
            "risk is high: automatic runs need low risk" if high else "risk is low",
        ),
    ]


def _person(f: GateFacts) -> tuple[list[Check], bool]:
    """The checks of a run a person started, and whether it waits for an approval."""
    ok, text = _confidence_text(f)
    undo = _irreversible(f)
    high = f.playbook.risk is Risk.HIGH
    needs = [t for t, bad in ((text, not ok), ("risk is high", high), (undo, bool(undo))) if bad]
    if f.mode is RunMode.APPROVAL and not needs:
        needs.append("the run waits for an approval")
    checks = [
        Check("confidence", True, text if ok else f"{text}: needs an approval"),
        Check(
            "reversible",
            True,
            f"{undo}: needs an approval" if undo else "every step can be undone",
        ),
        Check("risk", True, "risk is high: needs an approval" if high else "risk is low"),
    ]
    waiting = False
    if not needs:
        checks.append(Check("approval", True, "no approval needed"))
    elif not f.approver:
        waiting = True
        checks.append(
            Check(
                "approval",
                True,
                f"needs approval by a second responder (not {f.requested_by}): " + "; ".join(needs),
            )
        )
    elif f.approver == f.requested_by:
        checks.append(Check("self_approval", False, "you cannot approve your own run"))
    else:
        checks.append(Check("approval", True, f"approved by {f.approver}"))
    return checks, waiting


def decide(facts: GateFacts) -> Verdict:
    """Whether ``facts.playbook`` may run now, with every check and its sentence."""
    checks = _common(facts)
    waiting = False
    if facts.mode is RunMode.AUTO:
        checks.extend(_automatic(facts))
    else:
        more, waiting = _person(facts)
        checks.extend(more)
    if any(not c.passed for c in checks):
        return Verdict(Decision.REFUSED, tuple(checks))
    return Verdict(Decision.NEEDS_APPROVAL if waiting else Decision.RUN, tuple(checks))
