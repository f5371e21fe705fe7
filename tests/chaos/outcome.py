"""What a storm (tests/chaos/storm.py) counted: what it did, what was lost or doubled, and what
/ready, /metrics and the catch-up showed."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.faults import Fault


@dataclass
class Outcome:
    faults: list[tuple[str, Fault]] = field(default_factory=list)
    kills: int = 0
    bursts: int = 0
    clicks: int = 0
    lost: int = 0
    duplicates: int = 0
    resent: int = 0
    doubled_clicks: int = 0  # acknowledgements applied twice to one incident (audit trail)
    teams_clicks: int = 0  # clicks pressed on a Teams card (with Cluster(teams=True))
    teams_cards: int = 0  # cards posted to the Teams channel (with Cluster(teams=True))
    catchup_s: list[float] = field(default_factory=list)
    ready_named: dict[str, bool] = field(default_factory=dict)  # "slack/429" -> named?
    ready_reasons: dict[str, str] = field(default_factory=dict)
    # "slack/429" -> the longest failing_for_s /ready gave while it lasted
    ready_failing_for: dict[str, float] = field(default_factory=dict)
    aimed: dict[str, int] = field(default_factory=dict)  # moment -> kills aimed at it
    aims_missed: list[str] = field(default_factory=list)  # moments that did not come in time
    analyses_lost: int = 0
    phases: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds it took)
    runs: list[int] = field(default_factory=list)  # playbook runs started (aimed at)
    run_statuses: dict[int, str] = field(default_factory=dict)  # how each ended
    step_calls: int = 0  # requests the runs' step sent (one per run: none repeated)
    reanalysed: int = 0  # Re-analyse presses (each a Bedrock call of its own)
    max_depth: float = 0.0
    # per dependency, seconds between the 429s one method got (Retry-After: 1 s)
    retry_after_gaps: dict[str, list[float]] = field(default_factory=dict)
    unsettled: list[str] = field(default_factory=list)
    queued_at_end: int = 0  # outbox rows still pending when counted (card updates, mostly)
    details: list[str] = field(default_factory=list)
