"""What every executor shares: parameter checks against the catalog, typed reads, clipped output.

A playbook step's parameters arrive as :data:`~bot.ports.ParamValue` (after labels such as
``{host}`` were filled in, a number may arrive as text): :class:`Params` reads each one as the
type an action needs and raises :class:`~bot.errors.PermanentError` naming the parameter when it
cannot. :func:`check_params` refuses a parameter the catalog does not list, or a missing one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from bot.errors import PermanentError
from bot.ports import ExecutionPlan, ParamValue
from playbooks.catalog import CATALOG, ActionSpec

#: the most characters of output or error text that leave an executor
OUTPUT_LIMIT = 4096
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    note = f" ... [{len(text) - limit} more characters cut]"
    return text[: max(0, limit - len(note))] + note


def check_params(executor: str, action: str, params: Mapping[str, ParamValue]) -> ActionSpec:
    """The action's spec, once ``params`` name every required and no unknown parameter."""
    actions = CATALOG.get(executor)
    if actions is None:
        raise PermanentError(f"there is no executor '{executor}'")
    spec = actions.get(action)
    if spec is None:
        known = ", ".join(sorted(actions))
        raise PermanentError(f"executor '{executor}' has no action '{action}' (it has: {known})")
    missing = sorted(spec.required - set(params))
    if missing:
        raise PermanentError(
            f"{executor} {action}: missing parameter {', '.join(missing)}"
            f" (required: {', '.join(sorted(spec.required))})"
        )
    unknown = sorted(set(params) - spec.required - spec.optional)
    if unknown:
        allowed = ", ".join(sorted(spec.required | spec.optional))
        raise PermanentError(
            f"{executor} {action}: unknown parameter {', '.join(unknown)} (allowed: {allowed})"
        )
    return spec


def check_timeout(timeout_s: float) -> float:
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise PermanentError(f"a step's timeout must be more than 0 s (got {timeout_s})")
    return float(timeout_s)


class Params:
    """Typed reads of one step's parameters; every error names the parameter."""

    def __init__(self, where: str, values: Mapping[str, ParamValue]) -> None:
        self._where = where
        self._values = dict(values)

    @classmethod
    def of(cls, plan: ExecutionPlan) -> Params:
        return cls(f"{plan.executor} {plan.action}", dict(plan.params))

    def value(self, name: str) -> ParamValue | None:
        return self._values.get(name)

    def has(self, name: str) -> bool:
        value = self._values.get(name)
        return value is not None and value != "" and value != ()

    def _bad(self, name: str, what: str) -> PermanentError:
        return PermanentError(
            f"{self._where}: parameter {name} must be {what} (got {self._values.get(name)!r})"
        )

    def text(self, name: str, default: str | None = None) -> str:
        value = self._values.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            raise PermanentError(f"{self._where}: parameter {name} must not be empty")
        if isinstance(value, tuple | bool):
            raise self._bad(name, "text")
        return str(value).strip()

    def integer(self, name: str, default: int | None = None, low: int = 0) -> int:
        value = self._values.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            raise PermanentError(f"{self._where}: parameter {name} must not be empty")
        if isinstance(value, bool | tuple):
            raise self._bad(name, "a whole number")
        try:
            number = int(value)
            if isinstance(value, float) and value != number:
                raise ValueError
        except ValueError:
            raise self._bad(name, "a whole number") from None
        if number < low:
            raise self._bad(name, f"at least {low}")
        return number

    def seconds(self, name: str, default: float) -> float:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool | tuple):
            raise self._bad(name, "a number of seconds")
        try:
            number = float(value)
        except ValueError:
            raise self._bad(name, "a number of seconds") from None
        if not math.isfinite(number) or number < 0:
            raise self._bad(name, "a number of seconds, 0 or more")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self._bad(name, "true or false")

    def strings(self, name: str) -> tuple[str, ...]:
        """A list, or text separated by commas; empty items dropped."""
        value = self._values.get(name)
        if value is None:
            return ()
        if isinstance(value, tuple):
            items = value
        elif isinstance(value, str):
            items = tuple(value.split(","))
        else:
            raise self._bad(name, "a list or comma-separated text")
        return tuple(item.strip() for item in items if item.strip())

    def lines(self, name: str) -> tuple[str, ...]:
        """A list, or one piece of text (kept whole: commands may contain commas)."""
        value = self._values.get(name)
        if value is None or value == "":
            return ()
        if isinstance(value, tuple):
            return tuple(item for item in value if item.strip())
        if isinstance(value, str):
            return (value,)
        raise self._bad(name, "a list of text or one text")

    def json(self, name: str) -> str | None:
        """The parameter as compact JSON text (it must parse), or None when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._bad(name, "JSON text")
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise self._bad(name, f"valid JSON ({exc})") from None
        return json.dumps(parsed, separators=(",", ":"), sort_keys=True)


def frozen(values: Mapping[str, ParamValue]) -> tuple[tuple[str, ParamValue], ...]:
    """Parameters as the sorted pairs an :class:`~bot.ports.ExecutionPlan` holds."""
    return tuple(sorted((key, value) for key, value in values.items() if value is not None))


__all__ = ["OUTPUT_LIMIT", "Params", "check_params", "check_timeout", "clip", "frozen"]
