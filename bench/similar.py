"""Similar past incidents: is the top match of the same scenario, and how fast is a lookup?

A history of past incidents is built from the generator's scenarios: each incident takes one
scenario's events staged with its own random seed, its host and service names swapped for
others of the fleet, a share of unrelated lines mixed in (noise from other scenarios), and a
rule drawn from a handful of broad rules that several scenarios share (sometimes a wrong one).
Its log templates are mined with drain3 as the RCA engine does. Mining 100,000 incidents would
take long, so a pool of mined variants per scenario is built and the history draws from it,
each draw with its own host and service labels. New incidents are mined fresh (other seeds,
other noise) and looked up against the whole history.

The lookups are timed ``--runs`` times (default 5); the p99 printed is the median of the runs'
p99s. Drawing from a pool makes many past incidents share one document, which the index stores
once; ``--distinct`` gives every past incident a few words of its own root-cause text (as an
LLM writes it differently each time), so that no two documents are the same: the harder case.

Prints one JSON line: {"bench": "similar", "top1_precision": …, "lookup_p99_ms": …,
"incidents": …, "lookup_median_ms": …, "vectors": …, "runs": …}. ``--incidents`` sets the
history size (default 100,000).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import timedelta

from _common import START

from bot.similar.document import Profile, document
from bot.similar.index import SimilarIndex
from integrations.heuristic.templates import top_templates
from integrations.local.scenarios import SCENARIOS

HOSTS = [
    f"{kind}-{n}" for kind in ("web", "app", "db", "stor", "win-app", "edge") for n in range(1, 9)
]
SERVICES = ("checkout", "catalog", "search", "payments", "auth", "ledger", "", "")
RULES = ("errors-spike", "host-health", "security-events", "hardware-alerts")
VARIANTS = 30  # mined variants per scenario in the history pool
QUERIES_PER_SCENARIO = 12
NOISE = (0.1, 0.35)  # share of unrelated lines mixed into an incident's evidence
WRONG_RULE = 0.15  # how often the incident came from an unexpected rule
PROSE = [f"note{n}" for n in range(5000)]  # --distinct: words of root-cause text


def _rule_of(name: str) -> str:
    return RULES[sum(map(ord, name)) % len(RULES)]


def _lines(name: str, seed: int, noise_pool: list[str]) -> list[str]:
    rng = random.Random(seed)
    scenario = SCENARIOS[name]
    events = scenario.events(START + timedelta(minutes=seed % 10_000), rng)
    host, service = rng.choice(HOSTS), rng.choice(SERVICES) or "svc"
    lines = []
    for event in events:
        raw = event.raw
        if scenario.host:
            raw = raw.replace(scenario.host, host)
        if scenario.service:
            raw = raw.replace(scenario.service, service)
        lines.append(raw)
    extra = int(len(lines) * rng.uniform(*NOISE))
    lines += rng.sample(noise_pool, min(extra, len(noise_pool)))
    rng.shuffle(lines)
    return lines


def _profile(name: str, seed: int, noise_pool: list[str]) -> Profile:
    rng = random.Random(seed * 7 + 1)
    rule = rng.choice(RULES) if rng.random() < WRONG_RULE else _rule_of(name)
    templates = top_templates(_lines(name, seed, noise_pool), limit=5)
    labels = {"host": rng.choice(HOSTS), "service": rng.choice(SERVICES), "env": "prod"}
    return Profile.of(rule, "", labels, templates)


def _relabel(profile: Profile, rng: random.Random, distinct: bool) -> Profile:
    labels = {"host": rng.choice(HOSTS), "service": rng.choice(SERVICES), "env": "prod"}
    prose = " ".join(rng.sample(PROSE, 4)) if distinct else ""
    return Profile.of(profile.rule_id, "", labels, profile.templates, prose)


def _p99(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--distinct", action="store_true")
    args = parser.parse_args(argv)
    names = sorted(SCENARIOS)
    noise_rng = random.Random(99)
    noise_pool = [e.raw for n in names for e in SCENARIOS[n].events(START, noise_rng)[:40]]

    pool = {n: [_profile(n, 1000 + i, noise_pool) for i in range(VARIANTS)] for n in names}
    rng = random.Random(7)
    index = SimilarIndex()
    scenario_of: dict[int, str] = {}
    for incident_id in range(1, args.incidents + 1):
        name = names[incident_id % len(names)]
        profile = _relabel(rng.choice(pool[name]), rng, args.distinct)
        index.add(incident_id, document(profile))
        scenario_of[incident_id] = name

    index.query("warm up")  # the first lookup fits the weights: not a lookup a card waits on
    queries = [
        (name, document(_profile(name, 50_000 + q, noise_pool)))
        for name in names
        for q in range(QUERIES_PER_SCENARIO)
    ]
    right = 0
    p99s, medians = [], []
    for run in range(max(1, args.runs)):
        timings = []
        for name, doc in queries:
            started = time.perf_counter()
            hits = index.query(doc, k=3)
            timings.append((time.perf_counter() - started) * 1000)
            if run == 0:
                right += bool(hits) and scenario_of[hits[0].incident_id] == name
        p99s.append(_p99(timings))
        medians.append(statistics.median(timings))
    p99 = statistics.median(p99s)
    line = {
        "bench": "similar",
        "top1_precision": round(right / len(queries), 3),
        "lookup_p99_ms": round(p99, 2),
        "incidents": args.incidents,
        "lookup_median_ms": round(statistics.median(medians), 3),
        "vectors": getattr(index, "groups", len(index)),
        "runs": max(1, args.runs),
    }
    print(json.dumps(line))
    return 0 if line["top1_precision"] >= 0.9 and p99 <= 20 else 1


if __name__ == "__main__":
    sys.exit(main())
