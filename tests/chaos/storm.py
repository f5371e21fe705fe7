"""A storm against real bots (``run_bot.py run``, tests/cluster.py): while bursts of 5xx events
and clicks keep coming, Slack, Teams (with ``Cluster(teams=True)``), PagerDuty, Splunk and
Bedrock (with ``Cluster(bedrock=True)``) in turn answer 5xx, 429 with ``Retry-After``, hang past
the client's timeout or reset connections for a while, then recover; the bot may be killed with
SIGKILL at random moments and restarted on the same database.

Aimed kills (:meth:`Storm.aimed`) kill every bot at a chosen moment rather than a random one:
the fake holds the request that marks the moment (``FaultSwitch.arm`` with a hang, or
:meth:`~tests.fakes.teams.FakeBotConnector.arm`) and signals that it arrived, the bots are
killed while it hangs, then the fault ends and a bot starts again. The moments: ``post`` (a
``chat.postMessage`` in flight), ``teams-post`` (a card's new message to the Bot Connector in
flight), ``click`` (right after an "acknowledge" is pressed, while the card update it causes is
in flight), ``teams-click`` (the same, pressed on the Teams card, while the Teams card's update
is in flight), ``rca`` (a Bedrock Converse call in flight, asked by a Re-analyse press) and
``playbook`` (the HTTP step of an Auto-resolve run in flight, with ``Cluster(playbooks=True)``):
that run must end ``interrupted`` (the step is never sent again by itself). With Teams, every
other incident is acknowledged from its Teams card (tests/chaos/clicks.py).

What is checked, on the fakes' records: every burst has exactly one incident with its 10 hits,
one Slack card (and one Teams card, with Teams) and one page; every clicked incident is
acknowledged, once (the audit trail); no incident is left waiting for its analysis. A card
posted again because its sender was killed less than :data:`IN_FLIGHT_S` after Slack (or
Teams) took it is counted apart (``resent``: at-least-once in that window, docs/replicas.md),
as bench/failover.py does. While a fault lasts, /ready is polled (does it name the failing
dependency, and since when?) and /metrics (``bot_outbox_depth``); after it ends, the time until
every message is out and every burst so far has its incident, card and page is the catch-up.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import httpx

from tests.chaos.clicks import MixedTraffic, applied_acks
from tests.chaos.outcome import Outcome
from tests.cluster import HITS_PER_BURST, Cluster, Replica
from tests.fakes.faults import Fault, FaultSwitch

DEPENDENCIES = {
    "slack": "surface:slack",
    "teams": "surface:teams",
    "pagerduty": "pager:pagerduty",
    "splunk": "search",
    "bedrock": "rca:bedrock",
}
IN_FLIGHT_S = 0.5
RETRY_AFTER_S = 1.0
BATCH_S = 0.05  # requests of one outbox batch reach a fake within this of each other
# aimed kills: the moment -> (the fake that sees it, a part of the request's path)
AIMS = {
    "post": ("slack", "chat.postMessage"),
    "teams-post": ("teams", "post"),  # FakeBotConnector.arm: a new message, or an update
    "teams-click": ("teams", "update"),
    "click": ("slack", "chat.update"),
    "rca": ("bedrock", "/converse"),
    "playbook": ("splunk", "/services/chaos/drain"),
}
AIM_WAIT_S = 20.0  # how long to wait for the moment to come
AIM_HOLD_S = 30.0  # the held request hangs at most this long (the kill comes at once)


class Storm:
    def __init__(self, bots: Cluster, fault_s: float, kills: int, seed: int = 5) -> None:
        self.bots = bots
        self.fault_s = fault_s
        self.kills_left = kills
        self.rng = random.Random(seed)
        self.kills_at: list[float] = []
        self.outcome = Outcome()
        self.switches: dict[str, FaultSwitch] = {
            "slack": bots.slack.faults,
            "pagerduty": bots.pagerduty.faults,
            "splunk": bots.splunk.faults,
        }
        if bots.bedrock is not None:
            self.switches["bedrock"] = bots.bedrock.faults
        if bots.teams is not None:
            self.switches["teams"] = bots.teams.connector.faults

    def schedule(self, rounds: int = 1) -> list[tuple[str, Fault]]:
        """Each dependency in turn, each kind of fault in turn: four rounds pair every
        dependency with every kind once."""
        kinds = list(Fault)
        names = [n for n in DEPENDENCIES if n in self.switches]
        return [
            (name, kinds[(j + r) % len(kinds)])
            for r in range(rounds)
            for j, name in enumerate(names)
        ]

    def run(
        self, plan: list[tuple[str, Fault]], every: float = 2.0, aims: list[str] | None = None
    ) -> Outcome:
        """Bursts every ``every`` seconds: each costs two PagerDuty events and about two card
        updates, so below 2 s the traffic alone outruns PagerDuty's events budget and Slack's
        48 chat.update a minute, and the backlog never drains whatever the faults. After the
        faults, one aimed kill per entry of ``aims`` (see :data:`AIMS`)."""
        # a person presses again until a bot answers: a restart on a busy machine takes a while
        traffic = MixedTraffic(self.bots, every, attempts=120, seed=13, pause=0.5)
        traffic.start()
        try:
            time.sleep(1.5)
            for dependency, kind in plan:
                began = time.monotonic()
                self._fault(dependency, kind)
                self.outcome.phases.append((f"{dependency}/{kind.value}", time.monotonic() - began))
            for aim in aims or []:
                began = time.monotonic()
                self.aimed(aim, traffic)
                self.outcome.phases.append((f"aimed {aim}", time.monotonic() - began))
        finally:
            traffic.stop()
        self._settle(deadline_s=90.0)
        self._count(traffic)
        self.outcome.queued_at_end = self.bots.pending_messages()
        return self.outcome

    # one fault ---------------------------------------------------------------------------------

    def _fault(self, dependency: str, kind: Fault) -> None:
        switch = self.switches[dependency]
        key = f"{dependency}/{kind.value}"
        self.outcome.faults.append((dependency, kind))
        kill_at = time.monotonic() + self.rng.uniform(0.2, 0.9) * self.fault_s
        will_kill = self.kills_left > 0
        switch.set(kind, self.fault_s, retry_after=RETRY_AFTER_S)
        started = time.monotonic()
        named = False
        next_press = started
        while switch.active() is not None:
            if dependency == "bedrock" and time.monotonic() >= next_press:
                self._reanalyse()  # incidents alike share one analysis: ask for fresh ones
                next_press = time.monotonic() + 1.0
            if will_kill and time.monotonic() >= kill_at:
                self._kill()
                will_kill = False
            replica = self._any()
            if replica is not None:
                found, failing_for = self._ready_names(replica, DEPENDENCIES[dependency])
                if found and not named:
                    named = True
                    self.outcome.ready_reasons[key] = found
                if failing_for is not None:
                    longest = self.outcome.ready_failing_for.get(key, 0.0)
                    self.outcome.ready_failing_for[key] = max(longest, failing_for)
            if replica is not None:
                self.outcome.max_depth = max(self.outcome.max_depth, _metric(replica))
            time.sleep(0.2)
        ended = started + self.fault_s
        self.outcome.ready_named[key] = named
        if kind is Fault.THROTTLE:  # per method: each has its own budget and pause
            by_path: dict[str, list[float]] = {}
            for at, served, path in switch.hits:
                if served is Fault.THROTTLE and started <= at <= ended and not _probe(path):
                    by_path.setdefault(path.split("?")[0], []).append(at)
            gaps = self.outcome.retry_after_gaps.setdefault(dependency, [])
            for times in by_path.values():
                # posts of one batch go out together, before any answer is back: requests that
                # arrive within BATCH_S of the round's first are that round; the pause Retry-After
                # asks for is between rounds
                rounds = [t for n, t in enumerate(times) if n == 0 or t - times[n - 1] > BATCH_S]
                gaps.extend(b - a for a, b in itertools.pairwise(rounds))
        caught = self._settle(deadline_s=30.0, since=ended)
        if caught is not None:
            self.outcome.catchup_s.append(caught)
        else:
            self.outcome.unsettled.append(f"{key}: {self.bots.pending_summary()}")

    # aimed kills ---------------------------------------------------------------------------

    def aimed(self, aim: str, traffic: MixedTraffic) -> bool:
        """Kill every bot at the moment ``aim`` names, start one again, and wait for the
        catch-up. False when the moment did not come within :data:`AIM_WAIT_S`."""
        dependency, path = AIMS[aim]
        switch = self.switches.get(dependency)
        if switch is None:
            raise ValueError(f"aim {aim!r} needs the {dependency} fake in the cluster")
        if dependency == "teams" and self.bots.teams is not None:
            connector = self.bots.teams.connector  # an update's path starts with a post's
            received = connector.arm(path, AIM_HOLD_S)
            disarm = connector.disarm
        else:
            received = switch.arm(path, Fault.HANG, AIM_HOLD_S)
            disarm = switch.disarm
        if aim == "click":
            traffic.click_now()
        elif aim == "teams-click":
            traffic.click_from_teams()
        elif aim == "rca":
            self._reanalyse()
        elif aim == "playbook":
            incident_id = self.bots.latest_incident()
            run_id = self.bots.auto_resolve(incident_id) if incident_id is not None else None
            if run_id is not None:
                self.outcome.runs.append(run_id)
        if not received.wait(AIM_WAIT_S):
            disarm()
            self.outcome.aims_missed.append(aim)
            return False
        victims = self.bots.alive
        for victim in victims:
            victim.kill()
        self.kills_at.append(time.monotonic())
        self.outcome.kills += len(victims)
        self.outcome.aimed[aim] = self.outcome.aimed.get(aim, 0) + 1
        switch.clear()
        self.bots.start(max(1, len(victims)))
        caught = self._settle(deadline_s=30.0)
        if caught is not None:
            self.outcome.catchup_s.append(caught)
        else:
            self.outcome.unsettled.append(f"aimed {aim}: {self.bots.pending_summary()}")
        return True

    def _reanalyse(self) -> None:
        """Press Re-analyse on the newest incident: a Bedrock call of its own (incidents of
        one rule with alike evidence otherwise share their storm group's one analysis)."""
        incident_id = self.bots.latest_incident()
        if incident_id is not None:
            self.outcome.reanalysed += 1
            key = f"reanalyse-{incident_id}-{self.outcome.reanalysed}"
            self.bots.command(incident_id, "reanalyse", key)

    def _kill(self) -> None:
        live = self.bots.alive
        if not live:
            return
        victim = self.rng.choice(live)
        victim.kill()
        self.kills_at.append(time.monotonic())  # the Slack fake's clock too
        self.kills_left -= 1
        self.outcome.kills += 1
        self.bots.start(1)

    def _any(self) -> Replica | None:
        live = self.bots.alive
        return live[0] if live else None

    @staticmethod
    def _ready_names(replica: Replica, check: str) -> tuple[str, float | None]:
        """The reason /ready gives for ``check`` when it is not ok (else ''), and how long it
        says the check has been failing (None when it does not say)."""
        try:
            report = replica.api.get("/ready", timeout=12.0).json()
        except (httpx.HTTPError, ValueError):
            return "", None
        found = report.get("checks", {}).get(check, {})
        if found.get("status", "ok") == "ok":
            return "", None
        failing_for = found.get("failing_for_s")
        reason = f"{found.get('status')}: {found.get('reason', '')}"
        return reason, float(failing_for) if failing_for is not None else None

    # after -------------------------------------------------------------------------------------

    def _settled(self, upto: int) -> bool:
        services = self.bots.bursts[:upto]
        counts = self.bots.hit_counts()
        cards = self.bots.cards_posted()
        # chat.update has its own budget (48 a rolling minute): card updates may still queue
        if not all(s in counts and s in cards for s in services):
            return False
        if self.bots.teams is not None:
            teams_cards = self.bots.teams_card_posts()
            if not all(s in teams_cards for s in services):
                return False
        if len(self.bots.pagerduty.incidents) < sum(len(counts[s]) for s in services):
            return False
        return self.bots.bedrock is None or not set(self.bots.analyses_pending()) & set(services)

    def _settle(self, deadline_s: float, since: float | None = None) -> float | None:
        """Seconds from ``since`` (or now) until every burst written so far is handled."""
        since = since if since is not None else time.monotonic()
        # a burst lands in a window 1.5 s ahead: count only those whose window has passed
        upto = len(self.bots.bursts)
        stop = time.monotonic() + deadline_s
        while time.monotonic() < stop:
            if self._settled(upto):
                return max(0.0, time.monotonic() - since)
            time.sleep(0.1)
        return None

    def _resent(self, posts: dict[str, list[float]]) -> int:
        """Cards posted again because their sender was killed just after the post was taken."""
        return sum(
            1
            for times in posts.values()
            if len(times) > 1 and any(0 <= k - times[0] <= IN_FLIGHT_S for k in self.kills_at)
        )

    def _count(self, traffic: MixedTraffic) -> None:
        outcome = self.outcome
        services = list(self.bots.bursts)
        counts = self.bots.hit_counts()
        posts = self.bots.card_posts()
        pages = self.bots.pages()
        states = {r.service: r.state for r in self.bots.incidents()}
        acked = {s for s, state in states.items() if state == "acknowledged"}
        teams_posts = self.bots.teams_card_posts()
        resent = self._resent(posts)
        teams_resent = self._resent(teams_posts)
        lost_windows = [s for s in services if s not in counts]
        lost_cards = [s for s in services if s in counts and s not in posts]
        if self.bots.teams is not None:
            lost_cards += [f"{s} (teams)" for s in services if s in counts and s not in teams_posts]
        lost_clicks = [f"{s} ({states.get(s)})" for s in traffic.clicked if s not in acked]
        incidents = sum(len(v) for v in counts.values())
        lost_pages = max(0, incidents - len(pages))
        doubled_incidents = sum(len(v) - 1 for v in counts.values() if len(v) > 1)
        wrong_hits = sum(1 for v in counts.values() for h in v if h != HITS_PER_BURST)
        doubled_cards = sum(len(t) - 1 for t in posts.values() if len(t) > 1) - resent
        doubled_cards += sum(len(t) - 1 for t in teams_posts.values()) - teams_resent
        doubled_pages = sum(n - 1 for n in pages.values() if n > 1)
        doubled_clicks = sum(n - 1 for n in applied_acks(self.bots).values())
        outcome.bursts = len(services)
        outcome.clicks = len(traffic.clicked)
        outcome.teams_clicks = len(traffic.by_teams)
        outcome.doubled_clicks = doubled_clicks
        outcome.resent = resent + teams_resent
        outcome.teams_cards = sum(len(t) for t in teams_posts.values())
        # a run cut short by a kill becomes "interrupted" (never left running, never re-run)
        deadline = time.monotonic() + 30.0
        while outcome.runs and time.monotonic() < deadline:
            outcome.run_statuses = {r: self.bots.run_status(r) for r in outcome.runs}
            if "running" not in outcome.run_statuses.values():
                break
            time.sleep(0.5)
        stuck_runs = [r for r, status in outcome.run_statuses.items() if status == "running"]
        outcome.step_calls = self.bots.ops_calls("/services/chaos/drain")
        repeated_steps = max(0, outcome.step_calls - len(outcome.runs))
        lost_analyses = self.bots.analyses_pending()
        outcome.analyses_lost = len(lost_analyses)
        outcome.lost = (
            len(lost_windows)
            + len(lost_cards)
            + len(lost_clicks)
            + lost_pages
            + len(lost_analyses)
            + len(stuck_runs)
        )
        outcome.duplicates = (
            doubled_incidents
            + wrong_hits
            + doubled_cards
            + doubled_pages
            + doubled_clicks
            + repeated_steps
        )
        if lost_clicks:
            lost = {c.split(" ")[0] for c in lost_clicks}
            failed = [f for f in traffic.failures if f[0] in lost]
            outcome.details.append(f"failed presses of lost clicks: {Counter(failed)}")
        for label, items in (
            ("lost windows", lost_windows),
            ("lost cards", lost_cards),
            ("lost clicks", lost_clicks),
            ("analyses never done", lost_analyses),
            ("playbook runs left running", stuck_runs),
        ):
            if items:
                outcome.details.append(f"{label}: {items}")
        if lost_pages:
            outcome.details.append(f"lost pages: {lost_pages}")
        for label, n in (
            ("doubled incidents", doubled_incidents),
            ("windows with wrong hit counts", wrong_hits),
            ("doubled cards", doubled_cards),
            ("doubled pages", doubled_pages),
            ("playbook steps sent again", repeated_steps),
            ("clicks applied twice", doubled_clicks),
        ):
            if n:
                outcome.details.append(f"{label}: {n}")


def _probe(path: str) -> bool:
    """A health check of /ready (not a delivery, so no backoff expected)."""
    return any(p in path for p in ("auth.test", "/abilities", "server/info"))


def _metric(replica: Replica) -> float:
    try:
        return replica.metric("bot_outbox_depth")
    except httpx.HTTPError:
        return 0.0
