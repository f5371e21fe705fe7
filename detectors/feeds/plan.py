"""Which rules share one search: the planner over the parsed queries.

A rule is *fed* when the bot can evaluate its whole query itself (detectors/spl) over raw events
of one index: then one search per index and tick fetches the events that became searchable since
the previous one, and every member rule runs its own pipeline over them. A rule that cannot be
fed keeps its own full-window search and says why (``validate``, the rules page).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from detectors.model import Rule
from detectors.spl import Pipeline, SplError, parse
from detectors.spl.nodes import And, FieldIn, FieldMatch, SearchCommand


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One shared search: an index, the sourcetypes its rules read (empty: all of them) and
    the rules it feeds."""

    index: str
    sourcetypes: tuple[str, ...]
    rules: tuple[str, ...]
    #: the fastest member's interval: the feed fetches at most this often
    interval: timedelta
    #: how far back in event time the longest member window reaches
    longest_window: timedelta

    @property
    def name(self) -> str:
        return f"index={self.index}"

    @property
    def query(self) -> str:
        """The search the feed runs: raw events of its index and sourcetypes, nothing else."""
        text = f"search index={_quote(self.index)}"
        if not self.sourcetypes:
            return text
        types = " OR ".join(f"sourcetype={_quote(s)}" for s in self.sourcetypes)
        return f"{text} ({types})" if len(self.sourcetypes) > 1 else f"{text} {types}"


@dataclass(frozen=True, slots=True)
class FeedPlan:
    specs: tuple[FeedSpec, ...] = ()
    #: rules that run their own search, with the reason
    alone: dict[str, str] = field(default_factory=dict)

    def feeds_of(self, rule_id: str) -> list[FeedSpec]:
        """The feeds ``rule_id`` reads (one per index its query names); [] when it runs alone."""
        return [spec for spec in self.specs if rule_id in spec.rules]


def why_not_shared(rule: Rule) -> str | None:
    """Why ``rule`` cannot share a search (it then runs its own over its whole window), or None
    when it can."""
    if not rule.enabled:
        return "disabled"
    if rule.interval is None:
        return "runs on a cron schedule"
    try:
        pipeline = parse(rule.query)
    except SplError as exc:
        return f"uses SPL the bot cannot evaluate itself ({exc})"
    prefilter = pipeline.prefilter
    if prefilter.earliest is not None or prefilter.latest is not None:
        return "sets its own earliest/latest in the query"
    if not _named(pipeline, "index"):
        return "has no index= term (or index IN list) naming its indexes exactly"
    return None


def _named(pipeline: Pipeline, name: str) -> tuple[str, ...]:
    """The exact values the first search clause requires of field ``name`` (``name=v`` or
    ``name IN (a, b)`` at its top level); () when it does not pin them down."""
    first = pipeline.commands[0]
    assert isinstance(first, SearchCommand)
    nodes = first.expr.items if isinstance(first.expr, And) else (first.expr,)
    for node in nodes:
        if isinstance(node, FieldMatch) and node.field == name and node.op == "=":
            values: tuple[str, ...] = (node.value,)
        elif isinstance(node, FieldIn) and node.field == name:
            values = node.values
        else:
            continue
        if values and all(v and "*" not in v for v in values):
            return tuple(sorted({v.lower() for v in values}))
    return ()


def plan_feeds(rules: Iterable[Rule]) -> FeedPlan:
    """Group the rules that can share a search by index; the others run alone."""
    alone: dict[str, str] = {}
    members: dict[str, list[tuple[Rule, tuple[str, ...]]]] = {}
    for rule in rules:
        reason = why_not_shared(rule)
        if reason is not None:
            alone[rule.id] = reason
            continue
        pipeline = parse(rule.query)
        sourcetypes = _named(pipeline, "sourcetype")
        for index in _named(pipeline, "index"):
            members.setdefault(index, []).append((rule, sourcetypes))
    specs = [_spec(index, found) for index, found in sorted(members.items())]
    return FeedPlan(tuple(specs), alone)


def _spec(index: str, found: Sequence[tuple[Rule, tuple[str, ...]]]) -> FeedSpec:
    sourcetypes: tuple[str, ...] = ()
    if all(named for _, named in found):  # else one of the rules reads every sourcetype
        sourcetypes = tuple(sorted({s for _, named in found for s in named}))
    intervals = [rule.interval for rule, _ in found if rule.interval is not None]
    return FeedSpec(
        index=index,
        sourcetypes=sourcetypes,
        rules=tuple(rule.id for rule, _ in found),
        interval=min(intervals),
        longest_window=max(rule.window for rule, _ in found),
    )


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "_-:.*" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["FeedPlan", "FeedSpec", "plan_feeds", "why_not_shared"]
