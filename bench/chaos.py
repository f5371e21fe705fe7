"""Chaos: a storm of outside faults and kill -9 against real bots, then count on the fakes.

    python bench/chaos.py [--fault-seconds 4] [--rounds 4] [--kills 6] [--aimed 2]
                          [--replicas 1] [--every 2]
                          [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

While a burst of 5xx events (one incident each) and a click on "acknowledge" keep coming (every
other click pressed on the incident's Teams card), Slack, Teams, PagerDuty, Splunk and Bedrock
in turn answer 5xx, 429 with ``Retry-After``, hang past the client's timeout or reset
connections for ``--fault-seconds``, then recover; during ``--kills`` of those faults a replica
is killed with SIGKILL at a random moment and a new one started on the same database. Then
``--aimed`` times each, the bots are killed at an aimed moment: a Slack card post in flight, a
Teams card post in flight, a click being handled (from the API, from Teams), a Bedrock call in
flight, a playbook step in flight (tests/chaos/storm.py). The bots post every card to Slack and
to a Teams channel, getting their Teams tokens from the login fake (tests/fakes/entra.py). At
the end every burst must have exactly one incident, one Slack card, one Teams card and one page,
every click its acknowledgement (applied once), every incident its analysis, and every playbook
run cut short ends interrupted with its step sent once. Prints a report, then one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from _common import emit, median, postgres_schema

from tests.chaos.storm import AIMS, Storm
from tests.cluster import Cluster

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault-seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=4, help="each dependency this many times")
    parser.add_argument("--kills", type=int, default=6, help="at random moments of the faults")
    parser.add_argument("--aimed", type=int, default=2, help="kills at each aimed moment")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between bursts")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as folder,
        postgres_schema(args.database_url) as url,
        ExitStack() as stack,
    ):
        bots = Cluster(
            Path(folder), url, stack, heartbeat=0.5, bedrock=True, playbooks=True, teams=True
        )
        bots.settings["BOT_OUTBOX_RATE_LIMITS"] = '{"slack": {"rate": 20, "burst": 20}}'
        bots.settings["SPLUNK_SEARCH_TIMEOUT"] = "2"  # a hang outlasts it: the search fails
        bots.start(args.replicas)
        storm = Storm(bots, fault_s=args.fault_seconds, kills=args.kills)
        aims = [aim for _ in range(args.aimed) for aim in AIMS]
        outcome = storm.run(storm.schedule(args.rounds), every=args.every, aims=aims)

    for (dependency, kind), took in zip(outcome.faults, outcome.catchup_s, strict=False):
        print(f"{dependency}/{kind.value}: caught up {took:.2f}s after recovery", file=sys.stderr)
    for key, named in outcome.ready_named.items():
        reason = outcome.ready_reasons.get(key, "")
        said = "names it: " + reason if named else "all ok"
        longest = outcome.ready_failing_for.get(key)
        if longest is not None:
            said += f" (failing_for_s up to {longest:.1f})"
        print(f"/ready during {key}: {said}", file=sys.stderr)
    print(
        f"aimed kills {outcome.aimed}, moments that never came {outcome.aims_missed}, "
        f"Re-analyse presses {outcome.reanalysed}, playbook runs {outcome.run_statuses} "
        f"(step requests {outcome.step_calls})",
        file=sys.stderr,
    )
    for dependency, gaps in outcome.retry_after_gaps.items():
        if gaps:
            print(f"{dependency}: min gap between 429s {min(gaps):.2f}s", file=sys.stderr)
    print(
        f"bursts {outcome.bursts}, clicks {outcome.clicks}, kills {outcome.kills}, "
        f"max outbox depth {outcome.max_depth:.0f}, resent in flight {outcome.resent}, "
        f"still queued at the end {outcome.queued_at_end}",
        file=sys.stderr,
    )
    print(
        f"teams: {outcome.teams_cards} cards posted, {outcome.teams_clicks} clicks pressed on "
        f"Teams cards; clicks applied twice {outcome.doubled_clicks}",
        file=sys.stderr,
    )
    for line in outcome.details + outcome.unsettled:
        print(line, file=sys.stderr)
    emit(
        {
            "bench": "chaos",
            "faults": len(outcome.faults),
            "kills": outcome.kills,
            "aimed_kills": sum(outcome.aimed.values()),
            "lost": outcome.lost,
            "duplicates": outcome.duplicates,
            "resent_in_flight": outcome.resent,
            "catchup_p50_s": round(median(outcome.catchup_s), 3) if outcome.catchup_s else None,
            "catchup_max_s": round(max(outcome.catchup_s), 3) if outcome.catchup_s else None,
            "max_outbox_depth": int(outcome.max_depth),
            "ready_named": sum(outcome.ready_named.values()),
            "ready_said_how_long": sum(1 for v in outcome.ready_failing_for.values() if v > 0),
            "analyses_lost": outcome.analyses_lost,
            "teams_faults": sum(1 for dependency, _ in outcome.faults if dependency == "teams"),
            "teams_cards": outcome.teams_cards,
            "teams_clicks": outcome.teams_clicks,
        }
    )
    return 0 if outcome.lost == outcome.duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
