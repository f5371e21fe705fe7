"""The shipped rules replayed over the real-format log fixtures: which incidents each opens.

A manifest (``tests/fixtures/logs/cases.yaml``) names each fixture, how to read it (sourcetype,
index, host, as ``test-rule --data`` takes them), the shipped rules that claim such data, and
the group keys each rule must open incidents for (none: the fixture is a quiet one for it).
:func:`replay_fixture` backtests the rules over the whole file, the way the scheduler would run
them; ``python -m detectors.tools.content_proof`` prints the table per rule: the fixtures it
fires on, its keys, and its noise on the quiet fixtures.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from detectors.model import Rule
from detectors.rules import load_rules
from detectors.tools.backtest import Options, backtest
from detectors.tools.logfiles import LogOptions, read_log
from integrations.local import EventStore, LocalSearchBackend

MANIFEST = Path(__file__).parents[2] / "tests" / "fixtures" / "logs" / "cases.yaml"
YEAR = 2026  # the fixtures' syslog lines omit it


class Fixture(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    sourcetype: str
    index: str
    host: str = ""
    rules: tuple[str, ...]
    fires: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def expected(self, rule_id: str) -> frozenset[str]:
        return frozenset(self.fires.get(rule_id, ()))


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fixtures: tuple[Fixture, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one rule did on one fixture: the keys of the incidents it opened, and the keys
    that fired again after their incident resolved."""

    fixture: Fixture
    rule_id: str
    keys: frozenset[str]
    opened: int
    gaps: tuple[str, ...] = ()

    @property
    def quiet_expected(self) -> bool:
        return not self.fixture.expected(self.rule_id)


def load_manifest(path: Path = MANIFEST) -> Manifest:
    with path.open(encoding="utf-8") as handle:
        return Manifest.model_validate(yaml.safe_load(handle))


async def replay_fixture(
    fixture: Fixture, rules: dict[str, Rule], folder: Path = MANIFEST.parent
) -> list[Outcome]:
    """Backtest the fixture's rules over the whole file; one outcome per rule."""
    options = LogOptions(fixture.sourcetype, fixture.index, fixture.host, YEAR)
    events = read_log(folder / fixture.file, options)
    chosen = [rules[rule_id] for rule_id in fixture.rules]
    first = min(event.time for event in events).replace(microsecond=0) - timedelta(seconds=1)
    last = max(event.time for event in events)
    longest = max(rule.window for rule in chosen)
    replay = Options(start=first, end=last + longest + timedelta(minutes=1), resolve_quiet=None)
    with EventStore(":memory:") as store:
        store.add(events)
        report = await backtest(chosen, LocalSearchBackend(store), replay, fixture.file, str)
    outcomes = []
    for outcome in report.rules:
        prefix = f"{outcome.rule.id}|"
        keys = frozenset(
            key.removeprefix(prefix) for key, _ in report.by_incidents if key.startswith(prefix)
        )
        outcomes.append(
            Outcome(
                fixture,
                outcome.rule.id,
                keys,
                outcome.tally.opened + outcome.tally.reopened,
                tuple(gap.text() for gap in outcome.gaps),
            )
        )
    return outcomes


async def replay_all(manifest: Manifest) -> list[Outcome]:
    rules = {rule.id: rule for rule in load_rules([])}
    outcomes: list[Outcome] = []
    for fixture in manifest.fixtures:
        outcomes += await replay_fixture(fixture, rules)
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    """Per rule: fixtures it fires on with the keys, and its incidents on the quiet ones."""
    lines = ["| rule | fires on (keys) | quiet fixtures: incidents |", "|---|---|---|"]
    for rule_id in dict.fromkeys(o.rule_id for o in outcomes):
        mine = [o for o in outcomes if o.rule_id == rule_id]
        fires = "<br>".join(
            f"`{o.fixture.file}`: {', '.join(sorted(o.keys)) or 'NOTHING'}"
            + ("" if o.keys == o.fixture.expected(rule_id) else " (UNEXPECTED)")
            for o in mine
            if not o.quiet_expected
        )
        quiet = "<br>".join(
            f"`{o.fixture.file}`: {o.opened}" + (f" ({', '.join(sorted(o.keys))})" * bool(o.keys))
            for o in mine
            if o.quiet_expected
        )
        lines.append(f"| {rule_id} | {fires or '-'} | {quiet or '-'} |")
    return "\n".join(lines)


def main() -> int:
    outcomes = asyncio.run(replay_all(load_manifest()))
    print(table(outcomes))
    wrong = [o for o in outcomes if o.keys != o.fixture.expected(o.rule_id)]
    for o in wrong:
        print(f"MISMATCH {o.rule_id} on {o.fixture.file}: {sorted(o.keys)}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
