"""Chaos: a storm of outside faults and kill -9 against real bots, then count on the fakes.

    python bench/chaos.py [--fault-seconds 4] [--rounds 2] [--kills 6] [--replicas 1]
                          [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

While a burst of 5xx events (one incident each) and a click on "acknowledge" keep coming,
Slack, PagerDuty and Splunk in turn answer 5xx, 429 with ``Retry-After``, hang past the
client's timeout or reset connections for ``--fault-seconds``, then recover; during ``--kills``
of those faults a replica is killed with SIGKILL at a random moment and a new one started on the
same database (tests/chaos/storm.py). At the end every burst must have exactly one incident,
one card and one page, every click its acknowledgement. Prints a report, then one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from _common import emit, median, postgres_schema

from tests.chaos.storm import Storm
from tests.cluster import Cluster

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault-seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=4, help="each dependency this many times")
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between bursts")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as folder,
        postgres_schema(args.database_url) as url,
        ExitStack() as stack,
    ):
        bots = Cluster(Path(folder), url, stack, heartbeat=0.5)
        bots.settings["BOT_OUTBOX_RATE_LIMITS"] = '{"slack": {"rate": 20, "burst": 20}}'
        bots.start(args.replicas)
        storm = Storm(bots, fault_s=args.fault_seconds, kills=args.kills)
        outcome = storm.run(storm.schedule(args.rounds), every=args.every)

    for (dependency, kind), took in zip(outcome.faults, outcome.catchup_s, strict=False):
        print(f"{dependency}/{kind.value}: caught up {took:.2f}s after recovery", file=sys.stderr)
    for key, named in outcome.ready_named.items():
        reason = outcome.ready_reasons.get(key, "")
        said = "names it: " + reason if named else "all ok"
        print(f"/ready during {key}: {said}", file=sys.stderr)
    for dependency, gaps in outcome.retry_after_gaps.items():
        if gaps:
            print(f"{dependency}: min gap between 429s {min(gaps):.2f}s", file=sys.stderr)
    print(
        f"bursts {outcome.bursts}, clicks {outcome.clicks}, kills {outcome.kills}, "
        f"max outbox depth {outcome.max_depth:.0f}, resent in flight {outcome.resent}, "
        f"still queued at the end {outcome.queued_at_end}",
        file=sys.stderr,
    )
    for line in outcome.details + outcome.unsettled:
        print(line, file=sys.stderr)
    emit(
        {
            "bench": "chaos",
            "faults": len(outcome.faults),
            "kills": outcome.kills,
            "lost": outcome.lost,
            "duplicates": outcome.duplicates,
            "resent_in_flight": outcome.resent,
            "catchup_p50_s": round(median(outcome.catchup_s), 3) if outcome.catchup_s else None,
            "catchup_max_s": round(max(outcome.catchup_s), 3) if outcome.catchup_s else None,
            "max_outbox_depth": int(outcome.max_depth),
            "ready_named": sum(outcome.ready_named.values()),
        }
    )
    return 0 if outcome.lost == outcome.duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
