"""``run_bot.py test-rule``: run a file's rules once over a time range and show what would fire.

Nothing is created: no incident, no notification, no saved rule state. Each rule searches the
range once (without ``--from``: its own ``window`` back from ``--to``) and its type evaluates the
results with empty memory, the way a newly deployed rule's first run does. Evidence is redacted
as it would be on a card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.card import build_card
from bot.domain.hits import Alert
from bot.domain.incident import Incident, State
from bot.errors import BotError
from bot.ports import SearchBackend
from detectors.model import Rule
from detectors.runner import run_rule
from detectors.tools.card_text import card_text
from detectors.tools.gaps import FieldGap, GapCounter
from detectors.window import Window

SHOWN_GROUPS = 10
CONSOLE_LINK = "Open in console"


@dataclass(frozen=True, slots=True)
class Firing:
    """One group that would fire, with the card its new incident would post."""

    alert: Alert
    card: str

    @property
    def key(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.alert.group) or "(one group)"


@dataclass(frozen=True, slots=True)
class RuleTry:
    rule: Rule
    window: Window
    hits: int = 0
    firings: tuple[Firing, ...] = ()
    error: str = ""
    gaps: tuple[FieldGap, ...] = ()

    def lines(self) -> list[str]:
        rule = self.rule
        head = f"rule {rule.id} ({rule.type}): {rule.title}"
        if not rule.enabled:
            head += "  [disabled: it would not run]"
        span = f"{self.window.start:%Y-%m-%d %H:%M:%S} to {self.window.end:%Y-%m-%d %H:%M:%S} UTC"
        out = [head, f"  searched {span}"]
        if self.error:
            return [*out, f"  error: {self.error}"]
        fired = len(self.firings)
        verdict = f"{fired} group{'s' if fired != 1 else ''} would fire" if fired else "no alert"
        out.append(f"  {self.hits} result row{'s' if self.hits != 1 else ''}; {verdict}")
        out += [f"  WARNING {gap.text()}" for gap in self.gaps]
        for firing in self.firings[:SHOWN_GROUPS]:
            alert = firing.alert
            out.append(
                f"  FIRES {firing.key}: severity {alert.severity.value}, "
                f"{alert.events} events, value {alert.value:g}"
            )
            out += [f"    {line}" for line in firing.card.splitlines()]
        hidden = self.firings[SHOWN_GROUPS:]
        if hidden:
            keys = ", ".join(f.key for f in hidden[:20])
            more = f" and {len(hidden) - 20} more" if len(hidden) > 20 else ""
            out.append(f"  {len(hidden)} more groups fire: {keys}{more}")
        return out


@dataclass(frozen=True, slots=True)
class TryReport:
    source: str
    tries: tuple[RuleTry, ...]

    @property
    def failed(self) -> bool:
        return any(t.error for t in self.tries)

    @property
    def gaps(self) -> bool:
        """Whether some rule's result rows lacked one of its ``group_by`` fields."""
        return any(t.gaps for t in self.tries)

    def text(self) -> str:
        firing = sum(1 for t in self.tries if t.firings)
        lines = [f"{len(self.tries)} rule(s) against {self.source}", ""]
        for attempt in self.tries:
            lines += [*attempt.lines(), ""]
        groups = sum(len(t.firings) for t in self.tries)
        lines.append(f"{firing} of {len(self.tries)} rule(s) would fire ({groups} group(s))")
        gapped = [t.rule.id for t in self.tries if t.gaps]
        if gapped:
            lines.append(f"group_by fields missing from result rows: {', '.join(gapped)}")
        return "\n".join(lines)


async def try_rules(
    rules: Sequence[Rule],
    backend: SearchBackend,
    start: datetime | None,
    end: datetime,
    redact: Callable[[str], str],
) -> list[RuleTry]:
    """Run each rule once over ``[start, end)`` (or its window back from ``end``)."""
    tries = []
    for rule in rules:
        window = (
            Window(start=start, end=end, new_since=start)
            if start is not None
            else Window.sliding(end, rule.window, None)
        )
        counter = GapCounter(backend, [rule])
        try:
            result = await run_rule(rule, counter, window, redact)
        except BotError as exc:
            tries.append(RuleTry(rule, window, error=str(exc)))
            continue
        firings = tuple(Firing(alert, _card(alert, end)) for alert in result.alerts)
        tries.append(RuleTry(rule, window, result.hits, firings, gaps=counter.gaps(rule)))
    return tries


def _card(alert: Alert, now: datetime) -> str:
    incident = Incident(
        id=0,
        group_key=alert.group_key,
        rule_id=alert.rule_id,
        title=alert.title,
        severity=alert.severity,
        category=alert.category,
        service=alert.service,
        host=alert.host,
        owner=alert.owner,
        state=State.OPEN,
        created_at=now,
        updated_at=now,
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        hit_count=max(alert.events, alert.new_events),
        runbook=alert.runbook,
    )
    card = build_card(incident, alert.evidence, None, "", search_link=alert.search_link)
    links = tuple(link for link in card.links if link.label != CONSOLE_LINK)
    return card_text(replace(card, links=links))
