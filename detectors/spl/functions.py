"""The eval functions of the SPL subset. ``if`` and ``case`` evaluate lazily in spl_eval."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from detectors.fields.jsonpath import lookup, parse_json
from detectors.fields.model import python_regex
from detectors.spl.time import resolve_time
from detectors.spl.values import Value, format_value, like_pattern, sort_key, to_number

# The "now" of the running search (epoch seconds); set by spl.run for now()/time().
NOW: ContextVar[float | None] = ContextVar("spl_now", default=None)


@dataclass(frozen=True, slots=True)
class Function:
    min_args: int
    max_args: int | None  # None: any number
    impl: Callable[..., Value] | None  # None: evaluated specially (lazy arguments)


def _num1(fn: Callable[[float], Value]) -> Callable[[object], Value]:
    def apply(x: object) -> Value:
        n = to_number(x)
        return None if n is None else fn(n)

    return apply


def _round(x: object, digits: object = 0) -> Value:
    n = to_number(x)
    d = to_number(digits)
    if n is None or d is None:
        return None
    places = int(d)
    exact = Decimal(repr(n)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(exact) if places <= 0 else float(exact)


def _str1(fn: Callable[[str], Value]) -> Callable[[object], Value]:
    def apply(x: object) -> Value:
        return None if x is None else fn(format_value(x))

    return apply


def _trim(strip: str) -> Callable[..., Value]:
    def apply(x: object, chars: object = None) -> Value:
        if x is None:
            return None
        text = format_value(x)
        what = None if chars is None else format_value(chars)
        return getattr(text, strip)(what)

    return apply


def _substr(x: object, start: object, length: object = None) -> Value:
    s = to_number(start)
    if x is None or s is None:
        return None
    text = format_value(x)
    begin = int(s) - 1 if s > 0 else max(len(text) + int(s), 0)
    if length is None:
        return text[begin:]
    n = to_number(length)
    return None if n is None else text[begin : begin + max(int(n), 0)]


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """A regex as SPL writes it: PCRE's ``(?<name>...)`` named groups are accepted."""
    return re.compile(python_regex(pattern))


def _replace(x: object, pattern: object, repl: object) -> Value:
    if x is None or pattern is None or repl is None:
        return None
    return compile_regex(format_value(pattern)).sub(format_value(repl), format_value(x))


def _match(x: object, pattern: object) -> Value:
    if x is None or pattern is None:
        return None
    return compile_regex(format_value(pattern)).search(format_value(x)) is not None


def _like(x: object, pattern: object) -> Value:
    if x is None or pattern is None:
        return None
    return like_pattern(format_value(pattern)).fullmatch(format_value(x)) is not None


def _tonumber(x: object, base: object = None) -> Value:
    if x is None:
        return None
    if base is None:
        return to_number(x)
    b = to_number(base)
    if b is None:
        return None
    return int(format_value(x).strip(), int(b))


def _duration(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}+{clock}" if days else clock


def _tostring(x: object, fmt: object = None) -> Value:
    if x is None:
        return None
    if fmt is None:
        return format_value(x)
    n = to_number(x)
    kind = format_value(fmt)
    if n is None:
        return format_value(x)
    if kind == "hex":
        return hex(int(n)).upper().replace("0X", "0x")
    if kind == "commas":
        return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}"
    if kind == "duration":
        return _duration(n)
    return format_value(x)


def _typeof(x: object) -> Value:
    if x is None:
        return "Invalid"
    if isinstance(x, bool):
        return "Boolean"
    return "Number" if to_number(x) is not None else "String"


def _extreme(pick: Callable) -> Callable[..., Value]:
    def apply(*values: object) -> Value:
        present = [v for v in values if v is not None]
        return pick(present, key=sort_key) if present else None

    return apply


def _coalesce(*values: object) -> Value:
    return next((v for v in values if v is not None), None)  # type: ignore[return-value]


def _in(x: object, *values: object) -> Value:
    if x is None:
        return False
    text = format_value(x)
    return any(text == format_value(v) for v in values if v is not None)


def _cidrmatch(cidr: object, ip: object) -> Value:
    if cidr is None or ip is None:
        return False
    try:
        network = ipaddress.ip_network(format_value(cidr), strict=False)
        return ipaddress.ip_address(format_value(ip)) in network
    except ValueError:
        return False


def _now() -> Value:
    now = NOW.get()
    return now if now is not None else datetime.now(UTC).timestamp()


_SUBSECOND_RE = re.compile(r"%(\d?)N", re.ASCII)


def _strftime(t: object, fmt: object) -> Value:
    n = to_number(t)
    if n is None or fmt is None:
        return None
    moment = datetime.fromtimestamp(n, UTC)
    micros = f"{moment.microsecond:06d}000"

    def subsecond(m: re.Match[str]) -> str:
        return micros[: int(m.group(1) or "3")]

    return moment.strftime(_SUBSECOND_RE.sub(subsecond, format_value(fmt)))


def _strptime(text: object, fmt: object) -> Value:
    if text is None or fmt is None:
        return None
    moment = datetime.strptime(format_value(text), format_value(fmt))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _relative_time(t: object, spec: object) -> Value:
    n = to_number(t)
    if n is None or spec is None:
        return None
    return resolve_time(format_value(spec), datetime.fromtimestamp(n, UTC)).timestamp()


def _log(x: object, base: object = 10) -> Value:
    n, b = to_number(x), to_number(base)
    return None if n is None or b is None else math.log(n, b)


def _pow(x: object, y: object) -> Value:
    a, b = to_number(x), to_number(y)
    if a is None or b is None:
        return None
    if isinstance(a, int) and isinstance(b, int) and 0 <= b <= 64 and abs(a) < 2**32:
        return a**b
    result = float(a) ** float(b)  # OverflowError: null, like other failures
    return result if isinstance(result, float) and math.isfinite(result) else None


def _spath(x: object, path: object) -> Value:
    """The value at a JSON path, as the spath command reads it (None when not there)."""
    if x is None or path is None:
        return None
    document = parse_json(format_value(x))
    if document is None:
        return None
    try:
        return lookup(document, format_value(path))
    except ValueError:
        return None


FUNCTIONS: dict[str, Function] = {
    "if": Function(3, 3, None),
    "case": Function(2, None, None),
    "coalesce": Function(1, None, _coalesce),
    "isnull": Function(1, 1, lambda x: x is None),
    "isnotnull": Function(1, 1, lambda x: x is not None),
    "isnum": Function(1, 1, lambda x: to_number(x) is not None),
    "isstr": Function(1, 1, lambda x: isinstance(x, str) and to_number(x) is None),
    "typeof": Function(1, 1, _typeof),
    "null": Function(0, 0, lambda: None),
    "true": Function(0, 0, lambda: True),
    "false": Function(0, 0, lambda: False),
    "round": Function(1, 2, _round),
    "abs": Function(1, 1, _num1(abs)),
    "floor": Function(1, 1, _num1(math.floor)),
    "ceil": Function(1, 1, _num1(math.ceil)),
    "ceiling": Function(1, 1, _num1(math.ceil)),
    "sqrt": Function(1, 1, _num1(math.sqrt)),
    "exp": Function(1, 1, _num1(math.exp)),
    "ln": Function(1, 1, _num1(math.log)),
    "log": Function(1, 2, _log),
    "pow": Function(2, 2, _pow),
    "min": Function(1, None, _extreme(min)),
    "max": Function(1, None, _extreme(max)),
    "lower": Function(1, 1, _str1(str.lower)),
    "upper": Function(1, 1, _str1(str.upper)),
    "len": Function(1, 1, _str1(len)),
    "trim": Function(1, 2, _trim("strip")),
    "ltrim": Function(1, 2, _trim("lstrip")),
    "rtrim": Function(1, 2, _trim("rstrip")),
    "substr": Function(2, 3, _substr),
    "replace": Function(3, 3, _replace),
    "tonumber": Function(1, 2, _tonumber),
    "tostring": Function(1, 2, _tostring),
    "like": Function(2, 2, _like),
    "match": Function(2, 2, _match),
    "in": Function(2, None, _in),
    "cidrmatch": Function(2, 2, _cidrmatch),
    "now": Function(0, 0, _now),
    "time": Function(0, 0, _now),
    "strftime": Function(2, 2, _strftime),
    "strptime": Function(2, 2, _strptime),
    "relative_time": Function(2, 2, _relative_time),
    "spath": Function(2, 2, _spath),
}

# Functions whose argument at this index must be a valid regular expression.
REGEX_ARGUMENT = {"match": 1, "replace": 1}
