"""The typed syntax tree of the SPL subset, and the error every stage raises."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import PermanentError


class SplError(PermanentError):
    """A query the engine cannot run. ``position`` is a character offset into the query text."""

    def __init__(self, message: str, position: int, hint: str = "") -> None:
        text = f"{message} at position {position}"
        super().__init__(f"{text}; {hint}" if hint else text)
        self.reason = message
        self.position = position
        self.hint = hint


# --- the search clause ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """A bare word or a quoted phrase matched against ``_raw``; ``*`` is a wildcard."""

    text: str
    quoted: bool
    position: int


@dataclass(frozen=True, slots=True)
class FieldMatch:
    """``field<op>value`` with op one of ``= != < <= > >=``."""

    field: str
    op: str
    value: str
    position: int


@dataclass(frozen=True, slots=True)
class FieldIn:
    """``field IN (v1, v2, ...)``."""

    field: str
    values: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[SearchNode, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[SearchNode, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: SearchNode


SearchNode = Term | FieldMatch | FieldIn | And | Or | Not


# --- eval expressions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "NOT" or "-"
    operand: Expr
    position: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / % . = == != < <= > >= AND OR XOR LIKE
    left: Expr
    right: Expr
    position: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    position: int


Expr = Literal | FieldRef | Unary | Binary | Call


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchCommand:
    """A search clause; for the first one, ``earliest``/``latest`` are its inline modifiers."""

    expr: SearchNode | None
    position: int
    earliest: str | None = None
    latest: str | None = None


@dataclass(frozen=True, slots=True)
class WhereCommand:
    expr: Expr
    position: int


@dataclass(frozen=True, slots=True)
class EvalCommand:
    assignments: tuple[tuple[str, Expr], ...]
    position: int


@dataclass(frozen=True, slots=True)
class Aggregation:
    func: str  # canonical: count, dc, sum, avg, min, max, range, median, perc, stdev, var, ...
    field: str | None
    name: str  # the output field: the alias, else Splunk's default naming
    percentile: float | None = None


@dataclass(frozen=True, slots=True)
class StatsCommand:
    aggregations: tuple[Aggregation, ...]
    by: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool
    mode: str = "auto"  # auto | num | str


@dataclass(frozen=True, slots=True)
class SortCommand:
    keys: tuple[SortKey, ...]
    limit: int | None  # None: no limit
    position: int


@dataclass(frozen=True, slots=True)
class HeadCommand:
    limit: int
    position: int


@dataclass(frozen=True, slots=True)
class TableCommand:
    fields: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class BinCommand:
    field: str
    span: float
    as_time: bool  # True: floor to the span; False: a "low-high" range label
    alias: str | None
    position: int


@dataclass(frozen=True, slots=True)
class RenameCommand:
    pairs: tuple[tuple[str, str], ...]
    position: int


@dataclass(frozen=True, slots=True)
class FieldsCommand:
    remove: bool
    fields: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class DedupCommand:
    fields: tuple[str, ...]
    keep: int
    keepempty: bool
    position: int


@dataclass(frozen=True, slots=True)
class RexCommand:
    """``rex [field=<f>] [max_match=<n>] "<regex>"``: named groups become fields."""

    field: str
    regex: str  # Python syntax: PCRE's (?<name>...) already rewritten
    max_match: int  # 0: every match
    position: int


@dataclass(frozen=True, slots=True)
class RegexCommand:
    """``regex [<field>=|<field>!=]"<regex>"``: keep events whose field matches (or not)."""

    field: str
    negate: bool
    regex: str
    position: int


@dataclass(frozen=True, slots=True)
class SpathCommand:
    """``spath [input=<f>] [output=<f>] [path=]<path>``; no path: extract every key."""

    input: str
    output: str | None
    path: str | None
    position: int


@dataclass(frozen=True, slots=True)
class EventstatsCommand:
    """``eventstats``: stats aggregations added to every event of their group."""

    stats: StatsCommand
    position: int


@dataclass(frozen=True, slots=True)
class StreamstatsCommand:
    """``streamstats``: running aggregations over the events seen so far (per group)."""

    stats: StatsCommand
    current: bool  # include the event itself
    window: int  # 0: every event so far
    position: int


@dataclass(frozen=True, slots=True)
class TopCommand:
    """``top``/``rare``: the most (least) common value combinations, with count and percent."""

    fields: tuple[str, ...]
    by: tuple[str, ...]
    limit: int  # 0: all
    countfield: str | None  # None: showcount=false
    percentfield: str | None  # None: showperc=false
    rare: bool
    position: int


Command = (
    SearchCommand
    | WhereCommand
    | EvalCommand
    | StatsCommand
    | SortCommand
    | HeadCommand
    | TableCommand
    | BinCommand
    | RenameCommand
    | FieldsCommand
    | DedupCommand
    | RexCommand
    | RegexCommand
    | SpathCommand
    | EventstatsCommand
    | StreamstatsCommand
    | TopCommand
)
