"""Plan a playbook for one incident: parameters from its labels, each step through its executor.

Planning changes nothing. It fills ``{label}`` references from the incident's labels, coerces
each parameter to its declared type and checks its ``pattern``, then asks each step's executor
for its ``plan()`` (exactly what would run, where, with which parameters). The plan's
fingerprint (sha256 over the steps, their targets and parameters, and the run's target) is what
a confirmation and an approval bind to: a plan that changed has another fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.errors import PermanentError
from bot.ports import ExecutionPlan, Executor, ParamValue
from playbooks.model import PlannedStep
from playbooks.spec import LABEL_REF, ArgValue, Parameter, ParamType, Playbook, Step

#: characters a label value may never carry into a step (log text is untrusted)
UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True, slots=True)
class Plan:
    playbook: Playbook
    target: str
    parameters: tuple[tuple[str, ParamValue], ...]
    steps: tuple[PlannedStep, ...]
    rollback: tuple[PlannedStep, ...]
    fingerprint: str

    def to_json(self) -> str:
        """What a run stores: enough to carry out exactly this plan later (after an approval)."""
        book = self.playbook
        data = {
            **_fingerprinted(self),
            "fingerprint": self.fingerprint,
            "title": book.title,
            "risk": book.risk.value,
            "verify_wait_s": book.verify.wait.total_seconds(),
            "verify_window_s": book.verify.window.total_seconds() if book.verify.window else None,
            "verify_timeout_s": book.verify.timeout.total_seconds(),
            "steps": [_stored(s, book.steps[s.index]) for s in self.steps],
            "rollback": [_stored(s, book.rollback[s.index]) for s in self.rollback],
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class StoredStep:
    step: PlannedStep
    retry_delay_s: float
    undo: str | None


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A run's plan as it was confirmed (see :meth:`Plan.to_json`)."""

    playbook_id: str
    title: str
    target: str
    steps: tuple[StoredStep, ...]
    rollback: tuple[StoredStep, ...]
    verify_wait_s: float
    verify_window_s: float | None
    verify_timeout_s: float

    @classmethod
    def parse(cls, text: str) -> StoredPlan:
        data = json.loads(text)
        return cls(
            playbook_id=data["playbook"],
            title=data.get("title", data["playbook"]),
            target=data["target"],
            steps=tuple(_restored(s) for s in data["steps"]),
            rollback=tuple(_restored(s) for s in data["rollback"]),
            verify_wait_s=float(data.get("verify_wait_s", 0.0)),
            verify_window_s=data.get("verify_window_s"),
            verify_timeout_s=float(data.get("verify_timeout_s", 600.0)),
        )

    def rollback_for(self, completed: list[int]) -> list[StoredStep]:
        """The rollback steps that undo ``completed`` steps: those their ``undo`` names, last
        step first, then the rollback steps no step names (they undo the run as a whole)."""
        by_name = {s.step.name: s for s in self.rollback}
        named = {s.undo for s in self.steps if s.undo}
        out: list[StoredStep] = []
        for i in sorted(completed, reverse=True):
            undo = self.steps[i].undo
            if undo and undo in by_name and by_name[undo] not in out:
                out.append(by_name[undo])
        if completed:
            out.extend(s for s in self.rollback if s.step.name not in named)
        return out


def _json_value(value: ParamValue) -> object:
    return list(value) if isinstance(value, tuple) else value


def _stored(planned: PlannedStep, step: Step) -> dict[str, object]:
    p = planned.plan
    return {
        "phase": planned.phase,
        "index": planned.index,
        "name": planned.name,
        "reversible": planned.reversible,
        "retries": planned.retries,
        "retry_delay_s": step.retry_delay.total_seconds(),
        "undo": step.undo,
        "executor": p.executor,
        "action": p.action,
        "target": p.target,
        "description": p.description,
        "timeout_s": p.timeout_s,
        "params": [[k, _json_value(v)] for k, v in p.params],
    }


def _restored(data: dict[str, object]) -> StoredStep:
    params = tuple(
        (str(k), tuple(v) if isinstance(v, list) else v)
        for k, v in data["params"]  # type: ignore[attr-defined]
    )
    plan = ExecutionPlan(
        executor=str(data["executor"]),
        action=str(data["action"]),
        target=str(data["target"]),
        description=str(data["description"]),
        params=params,
        timeout_s=float(data["timeout_s"]),  # type: ignore[arg-type]
    )
    step = PlannedStep(
        phase=str(data["phase"]),
        index=int(data["index"]),  # type: ignore[call-overload]
        name=str(data["name"]),
        reversible=bool(data["reversible"]),
        plan=plan,
        retries=int(data["retries"]),  # type: ignore[call-overload]
    )
    undo = data.get("undo")
    return StoredStep(step, float(data["retry_delay_s"]), str(undo) if undo else None)  # type: ignore[arg-type]


def fill(text: str, values: Mapping[str, ParamValue], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PermanentError(f"{where}: the incident has no label {name!r} to fill {{{name}}}")
        value = values[name]
        return ",".join(value) if isinstance(value, tuple) else str(value)

    return LABEL_REF.sub(one, text)


def _coerce(name: str, param: Parameter, value: ParamValue) -> ParamValue:
    where = f"parameter {name!r}"
    kind = param.type
    try:
        if kind is ParamType.STRING:
            out: ParamValue = ",".join(value) if isinstance(value, tuple) else str(value)
        elif kind is ParamType.INTEGER:
            if isinstance(value, bool | tuple) or (
                isinstance(value, float) and not value.is_integer()
            ):
                raise ValueError
            out = int(value)
        elif kind is ParamType.NUMBER:
            if isinstance(value, bool | tuple):
                raise ValueError
            out = float(value)
        elif kind is ParamType.BOOLEAN:
            text = str(value).strip().lower()
            if text not in TRUE | FALSE:
                raise ValueError
            out = text in TRUE
        else:
            items = value if isinstance(value, tuple) else str(value).split(",")
            out = tuple(item.strip() for item in items if item.strip())
    except ValueError:
        article = "an" if kind.value[0] in "aeiou" else "a"
        raise PermanentError(f"{where}: {value!r} is not {article} {kind.value}") from None
    if param.pattern is not None:
        for item in out if isinstance(out, tuple) else (out,):
            if not re.fullmatch(param.pattern, str(item)):
                raise PermanentError(
                    f"{where}: {item!r} does not match its pattern {param.pattern!r}"
                )
    return out


def safe_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a plan may use: values with control characters (newlines …) are left out."""
    return {k: v for k, v in labels.items() if not UNSAFE.search(v)}


def parameters(
    playbook: Playbook,
    labels: Mapping[str, str],
    overrides: Mapping[str, ParamValue] | None = None,
) -> dict[str, ParamValue]:
    """Every parameter's typed value: an override, else its default with labels filled in."""
    labels = safe_labels(labels)
    given = dict(overrides or {})
    out: dict[str, ParamValue] = {}
    for name, param in playbook.parameters.items():
        raw: ParamValue | None
        if name in given:
            raw = given[name]
        elif param.default is None:
            raw = labels.get(name)
        else:
            raw = _arg(param.default, labels, f"parameter {name!r}")
        if raw is None or raw == "":
            if param.required:
                raise PermanentError(
                    f"parameter {name!r} has no value: the incident has no label {name!r} "
                    "and the playbook gives no default"
                )
            continue
        out[name] = _coerce(name, param, raw)
    return out


def _arg(value: ArgValue, values: Mapping[str, ParamValue], where: str) -> ParamValue:
    if isinstance(value, list):
        return tuple(fill(item, values, where) for item in value)
    if isinstance(value, str):
        whole = LABEL_REF.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]  # keeps the parameter's type
        return fill(value, values, where)
    return value


def step_args(step: Step, values: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    return {k: _arg(v, values, f"step {step.name!r} argument {k!r}") for k, v in step.args.items()}


async def plan_playbook(
    playbook: Playbook,
    labels: Mapping[str, str],
    executors: Mapping[str, Executor],
    overrides: Mapping[str, ParamValue] | None = None,
) -> Plan:
    """Plan every step and rollback step; raise PermanentError naming what is wrong."""
    params = parameters(playbook, labels, overrides)
    values: dict[str, ParamValue] = {**safe_labels(labels), **params}
    target = fill(playbook.target, values, "target")
    steps = tuple(
        [await _plan_step("step", i, s, values, executors) for i, s in enumerate(playbook.steps)]
    )
    rollback = tuple(
        [
            await _plan_step("rollback", i, s, values, executors)
            for i, s in enumerate(playbook.rollback)
        ]
    )
    ordered = tuple(sorted(params.items()))
    plan = Plan(playbook, target, ordered, steps, rollback, "")
    digest = hashlib.sha256(
        json.dumps(_fingerprinted(plan), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return Plan(playbook, target, ordered, steps, rollback, digest)


async def _plan_step(
    phase: str,
    index: int,
    step: Step,
    values: Mapping[str, ParamValue],
    executors: Mapping[str, Executor],
) -> PlannedStep:
    executor = executors.get(step.executor)
    if executor is None:
        raise PermanentError(
            f"step {step.name!r} needs the {step.executor!r} executor, which is not set up here"
        )
    planned: ExecutionPlan = await executor.plan(
        step.action, step_args(step, values), step.timeout.total_seconds()
    )
    return PlannedStep(
        phase=phase,
        index=index,
        name=step.name,
        reversible=bool(step.reversible or step.undo),
        plan=planned,
        retries=step.retries,
    )


def _step_data(step: PlannedStep) -> dict[str, object]:
    return {
        "phase": step.phase,
        "index": step.index,
        "name": step.name,
        "executor": step.plan.executor,
        "action": step.plan.action,
        "target": step.plan.target,
        "params": [[k, list(v) if isinstance(v, tuple) else v] for k, v in step.plan.params],
        "timeout_s": step.plan.timeout_s,
        "retries": step.retries,
    }


def _fingerprinted(plan: Plan) -> dict[str, object]:
    return {
        "playbook": plan.playbook.id,
        "target": plan.target,
        "parameters": [[k, list(v) if isinstance(v, tuple) else v] for k, v in plan.parameters],
        "steps": [_step_data(s) for s in plan.steps],
        "rollback": [_step_data(s) for s in plan.rollback],
    }
