"""Failover: three replicas on one PostgreSQL database, kill -9 the lease holder ten times.

    python bench/failover.py [--kills 10] [--heartbeat 1.0]
                             [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Three ``run_bot.py run`` processes share a fresh schema; they search the Splunk fake, post to
the Slack fake and page the PagerDuty fake (tests/cluster.py). A steady stream arrives all along:
every second a burst of 10 5xx events for a new service (one incident each), and a click
on "acknowledge" for the incident of an earlier burst, sent to a random live replica (retried
on another one, with the same idempotency key, when that replica is gone, as a load balancer
would). Ten times: wait, kill -9 whichever replica holds the scheduler lease, time how long
until another holds it, start a replacement.

At the end every burst must have exactly one incident with exactly its 10 hits (a lost window
leaves a burst without one; a window committed twice doubles its hits), one Slack card and one
page; every clicked incident must be acknowledged. Prints a report, then one JSON line.

``duplicates`` counts what was done twice on our side (an incident, a window's hits, a page as
people see it, a card posted twice for any other reason). ``resent_in_flight`` counts sends
repeated because their sender was killed after the provider took the message and before our
commit (at-least-once in that window, docs/replicas.md): a trigger PagerDuty folds by its
dedup key, or a card whose first post came less than half a second before a kill.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from _common import emit, median, postgres_schema

from tests.cluster import HITS_PER_BURST, Cluster, Replica, Traffic

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
IN_FLIGHT_S = 0.5  # a post this close before a kill may have been in flight when it died


def scrape(replica: Replica, name: str) -> float:
    try:
        return replica.metric(name)
    except httpx.HTTPError:
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--heartbeat", type=float, default=1.0, help="BOT_LEASE_HEARTBEAT (s)")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as folder,
        postgres_schema(args.database_url) as url,
        ExitStack() as stack,
    ):
        bots = Cluster(Path(folder), url, stack, heartbeat=args.heartbeat)
        # Slack's default pace (1 message a second per channel, shared by the replicas) would
        # make the stream below queue up; this measures failover, not that pacing
        bots.settings["BOT_OUTBOX_RATE_LIMITS"] = '{"slack": {"rate": 20, "burst": 20}}'
        bots.start(3)
        bots.wait_holder(timeout=30)
        traffic = Traffic(bots, every=1.0, attempts=5, seed=7)
        traffic.start()
        takeovers: list[float] = []
        kills_at: list[float] = []
        fenced = 0.0
        for kill in range(args.kills):
            time.sleep(2.0 + random.random())
            holder = bots.wait_holder(timeout=30)
            fenced += scrape(holder, "bot_fenced_writes_total")
            holder.kill()
            killed = time.monotonic()
            kills_at.append(killed)
            bots.wait_holder(other_than=holder, timeout=30)
            takeovers.append(time.monotonic() - killed)
            print(f"kill {kill + 1}: takeover in {takeovers[-1]:.2f}s", file=sys.stderr)
            bots.start(1)  # the replacement task
        time.sleep(2.0)
        traffic.stop()
        services = list(bots.bursts)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = bots.hit_counts()
            acked = {r.service for r in bots.incidents() if r.state == "acknowledged"}
            if (
                set(services) <= set(counts)
                and set(services) <= set(bots.cards_posted())
                and set(traffic.clicked) <= acked
                and bots.pending_messages() == 0
            ):
                break
            time.sleep(0.5)
        else:
            print(f"not settled after 60 s: {bots.pending_summary()}", file=sys.stderr)
        time.sleep(1.0)
        counts = bots.hit_counts()
        posts = bots.card_posts()
        cards = {service: len(times) for service, times in posts.items()}
        # a card posted again because its sender was killed after Slack took the post and
        # before the outbox row was marked sent: at-least-once towards Slack in that window
        resent_cards = sum(
            1
            for times in posts.values()
            if len(times) > 1 and any(0 <= k - times[0] <= IN_FLIGHT_S for k in kills_at)
        )
        pages = bots.pages()
        acked = {r.service for r in bots.incidents() if r.state == "acknowledged"}
        fenced += sum(scrape(r, "bot_fenced_writes_total") for r in bots.alive)
        windows_lost = sum(1 for s in services if s not in counts)
        duplicates = (
            sum(len(counts.get(s, [])) - 1 for s in services if len(counts.get(s, [])) > 1)
            + sum(1 for s in services for hits in counts.get(s, []) if hits != HITS_PER_BURST)
            + sum(n - 1 for n in cards.values() if n > 1)
            - resent_cards
            + sum(n - 1 for n in pages.values() if n > 1)
        )
        clicks_lost = sum(1 for s in traffic.clicked if s not in acked)
        missing_cards = sum(1 for s in services if s in counts and s not in cards)
        resent = bots.triggers_sent() - sum(pages.values())

    print(f"replicas started: {args.kills + 3}, killed: {args.kills}", file=sys.stderr)
    print(
        f"takeover: median {median(takeovers):.2f}s, max {max(takeovers):.2f}s "
        f"(bound 2 x heartbeat = {2 * args.heartbeat:.1f}s, plus the probe's poll)",
        file=sys.stderr,
    )
    print(
        f"bursts: {len(services)}, incidents: {sum(len(v) for v in counts.values())}, "
        f"cards: {sum(cards.values())} (missing {missing_cards}), pages: {sum(pages.values())} "
        f"(triggers sent again after a kill, folded by their dedup key: {resent}), "
        f"cards posted again by a killed sender's successor: {resent_cards}, "
        f"clicks: {len(traffic.clicked)} (retried {traffic.click_errors})",
        file=sys.stderr,
    )
    emit(
        {
            "bench": "failover",
            "kills": args.kills,
            "heartbeat_s": args.heartbeat,
            "takeover_p50_s": round(median(takeovers), 3),
            "takeover_max_s": round(max(takeovers), 3),
            "windows_lost": windows_lost,
            "duplicates": duplicates,
            "clicks_lost": clicks_lost,
            "fenced_writes": int(fenced),
            "resent_in_flight": resent_cards + resent,
        }
    )
    return 0 if windows_lost == duplicates == clicks_lost == missing_cards == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
