"""Several real bots (``run_bot.py run``) on one PostgreSQL database, searching the Splunk fake,
posting to the Slack fake and paging the PagerDuty fake: what the replica tests and
``bench/failover.py`` start.

With ``bedrock=True`` they analyse incidents with Bedrock (``BOT_RCA=bedrock``) on the Bedrock
fake (whose injected 5xx and 429 say ``ServiceUnavailableException`` and
``ThrottlingException``, as Bedrock does), falling back to the heuristic analysis.

With ``teams=True`` they also post every card to a Teams channel on the Bot Connector fake,
authenticating through the login fake (tests/fakes/entra.py, ``Cluster.teams``); the first
bot started is added to the team.

With ``playbooks=True`` they load one playbook, ``chaos-drain``, for the rule's incidents: a
reversible HTTP step that POSTs to ``/services/chaos/drain`` on the Splunk fake (a stand-in
for an operations endpoint, with the fake's fault switch), started by :meth:`Cluster.auto_resolve`.

The replicas run one rule, ``burst``: 5xx events of one service, searched in 1-second windows
that follow each other (window = interval), at least 5 in a window open an incident of that
service. :meth:`Cluster.burst` writes 10 such events for a new service a little ahead of now, so
exactly one window holds them: a lost window shows as a missing incident, a window committed
twice as a hit count of 20.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from sqlalchemy import Engine, create_engine, func, select

from bot.store.repo import INCIDENTS, OUTBOX
from bot.store.runs import RUNS
from integrations.local import Event
from tests.botprocess import RUN_BOT, SHIPPED_WEB_RULES, clean_env, free_port
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.faults import Fault
from tests.fakes.pagerduty import FakePagerDuty, make_tls
from tests.fakes.slack import BOT_TOKEN, CHANNEL, SIGNING_SECRET, FakeSlack
from tests.fakes.splunk import FakeSplunk
from tests.fakes.teams_tenant import TeamsTenant
from tests.traffic import Traffic  # re-exported: it drives a Cluster

RULE_ID = "burst"
HITS_PER_BURST = 10
SPLUNK_TOKEN = "eyJrIjoiZmFrZS1zcGx1bmstdG9rZW4tZm9yLXJlcGxpY2FzIn0"
ROUTING_KEY = "R0UT1NGKEYREPL1CA500000000000001"
PD_TOKEN = "fake-rest-api-token-replicas-0001"
READY_TIMEOUT_S = 40.0
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
BEDROCK_ERRORS = {
    Fault.ERROR: {"x-amzn-ErrorType": "ServiceUnavailableException:"},
    Fault.THROTTLE: {"x-amzn-ErrorType": "ThrottlingException:"},
}

T = TypeVar("T")


class ClusterError(AssertionError):
    """Something the replicas should have done did not happen in time (with their logs)."""


def write_rules(folder: Path) -> Path:
    shipped = yaml.safe_load(SHIPPED_WEB_RULES.read_text())
    rule = next(r for r in shipped["rules"] if r["id"] == "web-5xx-burst")
    rule.update(
        id=RULE_ID,
        title="5xx burst on {service}",
        interval="1s",
        window="1s",
        threshold={"op": ">=", "value": 5},
    )
    rule.pop("suggested_playbook", None)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "burst.yaml").write_text(yaml.safe_dump({"rules": [rule]}))
    return folder


PLAYBOOK_CATEGORY = "/api/v1/config/category/application"


def write_playbook(folder: Path, ops_url: str) -> Path:
    """``chaos-drain``: one reversible HTTP step (and its undo) for the burst rule's incidents."""
    step = {"executor": "http", "action": "request", "timeout": "30s"}
    playbook = {
        "id": "chaos-drain",
        "title": "Drain the service",
        "category": "application",
        "matches": {"rules": [RULE_ID]},
        "target": "http:{service}",
        "steps": [
            {
                **step,
                "name": "drain",
                "args": {"url": ops_url + "drain?service={service}"},
                "undo": "undrain",
            }
        ],
        "rollback": [
            {**step, "name": "undrain", "args": {"url": ops_url + "undrain?service={service}"}}
        ],
        "verify": {"wait": "1m"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chaos.yaml").write_text(yaml.safe_dump(playbook))
    return folder


@dataclass
class Replica:
    name: str
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready(self) -> dict[str, Any] | None:
        try:
            response = self.api.get("/ready", timeout=2.0)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def metric(self, name: str) -> float:
        """One sample of ``/metrics`` (0 when absent)."""
        text = self.api.get("/metrics").text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def kill(self) -> None:
        """kill -9."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        self.api.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Cluster:
    def __init__(
        self,
        workdir: Path,
        database_url: str,
        stack: ExitStack,
        heartbeat: float = 0.5,
        bedrock: bool = False,
        playbooks: bool = False,
        teams: bool = False,
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.splunk = stack.enter_context(FakeSplunk(token=SPLUNK_TOKEN))
        self.slack = FakeSlack().start_in_thread()
        stack.callback(self.slack.stop_thread)
        tls = make_tls(workdir)
        self.pagerduty = stack.enter_context(FakePagerDuty(tls, api_token=PD_TOKEN))
        self.engine: Engine = create_engine(
            database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        stack.callback(self.engine.dispose)
        self.replicas: list[Replica] = []
        stack.callback(self.stop_all)
        self.heartbeat = heartbeat
        rules = write_rules(workdir / "rules")
        self.settings = {
            "BOT_DATABASE_URL": database_url,
            "BOT_HTTP_HOST": "127.0.0.1",
            "BOT_GENERATOR": "false",
            "BOT_SHIPPED_RULES": "false",
            "BOT_RULES_PATH": str(rules),
            "BOT_SCHEDULE_JITTER": "0s",
            "BOT_RCA": "heuristic",
            "BOT_LEASE_HEARTBEAT": f"{heartbeat}s",
            "BOT_OUTBOX_CLAIM_TIMEOUT": "2s",
            "BOT_ESCALATION": json.dumps([{"severity": ["high"], "after": "0s"}]),
            "BOT_SEARCH_BACKEND": "splunk",
            "SPLUNK_HOST": self.splunk.host,
            "SPLUNK_PORT": str(self.splunk.port),
            "SPLUNK_SCHEME": "http",
            "SPLUNK_TOKEN": SPLUNK_TOKEN,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "SLACK_DEFAULT_CHANNEL": CHANNEL,
            "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "PAGERDUTY_EVENTS_URL": self.pagerduty.url,
            "PAGERDUTY_API_URL": self.pagerduty.url,
            "PAGERDUTY_API_TOKEN": PD_TOKEN,
            "PAGERDUTY_CA_FILE": str(tls.ca_file),
        }
        if playbooks:
            self.settings.update(
                BOT_PLAYBOOKS_PATH=str(write_playbook(workdir / "playbooks", self.ops_url)),
                BOT_SHIPPED_PLAYBOOKS="false",
                BOT_PLAYBOOK_HTTP_ALLOWLIST=self.ops_url,
            )
        self.bedrock: FakeBedrock | None = None
        if bedrock:
            self.bedrock = stack.enter_context(FakeBedrock())
            self.bedrock.faults.headers.update(BEDROCK_ERRORS)
            self.settings.update(
                BOT_RCA="bedrock",
                BEDROCK_MODEL_ID=BEDROCK_MODEL,
                BEDROCK_ENDPOINT_URL=self.bedrock.url,
                BEDROCK_TIMEOUT="3s",
                BEDROCK_RPM="600",
                AWS_ACCESS_KEY_ID="testing-access-key-id",
                AWS_SECRET_ACCESS_KEY="testing-secret-access-key",
                AWS_REGION="us-east-1",
                AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
                AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
                AWS_EC2_METADATA_DISABLED="true",
            )
        self.teams: TeamsTenant | None = None
        if teams:
            self.teams = TeamsTenant(workdir / "teams", stack)
            self.settings.update(self.teams.settings())
        self._services = 0
        self.bursts: list[str] = []

    # processes -------------------------------------------------------------------------------

    def start(self, count: int = 1) -> list[Replica]:
        """Start ``count`` replicas at once and wait until each answers /ready."""
        started = [self._spawn() for _ in range(count)]
        for replica in started:
            self.wait_for(self._ready_probe(replica), f"{replica.name} ready", READY_TIMEOUT_S)
        if self.teams is not None and started:
            self.teams.join(started[0].url)
        return started

    def _ready_probe(self, replica: Replica) -> Callable[[], dict[str, Any] | None]:
        def probe() -> dict[str, Any] | None:
            if not replica.alive:
                raise ClusterError(f"{replica.name} exited early\n{replica.output()[-4000:]}")
            return replica.ready()

        return probe

    def _spawn(self) -> Replica:
        name = f"replica-{len(self.replicas) + 1}"
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {
            k: v
            for k, v in clean_env(**self.settings).items()
            if not k.startswith(("SPLUNK_", "SLACK_", "PAGERDUTY_", "TEAMS_", "AWS_", "BEDROCK_"))
            or k in self.settings
        }
        env.update(BOT_HTTP_PORT=str(port), BOT_LOCAL_EVENTS_PATH=str(folder / "events.db"))
        log_path = folder / "bot.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(RUN_BOT), "run"],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(name, f"http://127.0.0.1:{port}", log_path, process)
        self.replicas.append(replica)
        return replica

    def stop_all(self) -> None:
        for replica in self.replicas:
            replica.stop()

    @property
    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def holder(self) -> Replica | None:
        """The live replica whose /ready says it holds the lease."""
        for replica in self.alive:
            report = replica.ready()
            if report and report["lease"]["held"]:
                return replica
        return None

    def wait_holder(self, other_than: Replica | None = None, timeout: float = 15.0) -> Replica:
        return self.wait_for(
            lambda: (h := self.holder()) is not None and h is not other_than and h,
            "a lease holder",
            timeout,
            poll=0.05,
        )

    def generation(self) -> int:
        with self.engine.connect() as conn:
            value = conn.exec_driver_sql(
                "SELECT generation FROM leases WHERE name = 'scheduler'"
            ).scalar()
        return int(value or 0)

    # traffic ---------------------------------------------------------------------------------

    def burst(self, ahead: float = 1.5) -> str:
        """10 5xx events of a new service, ``ahead`` seconds in the future (so a window that
        has not been searched yet holds them all)."""
        self._services += 1
        service = f"svc-{self._services:03d}"
        at = datetime.now(UTC) + timedelta(seconds=ahead)
        events = [
            Event(
                time=at,
                raw=f'10.0.0.{i} - - "GET /api HTTP/1.1" status=503 service={service}',
                index="web",
                sourcetype="nginx:access",
                host="lb-1",
                fields={"status": "503", "service": service},
            )
            for i in range(HITS_PER_BURST)
        ]
        self.splunk.add_events(events)
        self.bursts.append(service)
        return service

    def command(self, incident_id: int, command: str, key: str) -> bool:
        """Press ``command`` on the incident through any live bot's API, once."""
        for replica in self.alive:
            try:
                response = replica.api.post(
                    f"/api/v1/incidents/{incident_id}/commands",
                    json={"command": command},
                    headers={"Idempotency-Key": key},
                    timeout=5.0,
                )
            except httpx.HTTPError:
                continue
            return response.status_code == 200
        return False

    @property
    def ops_url(self) -> str:
        """Where the playbook's steps go (the Splunk fake, under a path of its own)."""
        return f"http://127.0.0.1:{self.splunk.port}/services/chaos/"

    def auto_resolve(self, incident_id: int) -> int | None:
        """Press Auto-resolve on the incident through any live bot (dry run, then confirm
        its plan), letting the category run without a second responder: the run's id."""
        for replica in self.alive:
            try:
                replica.api.put(PLAYBOOK_CATEGORY, json={"threshold": 0.5})
                path = f"/api/v1/incidents/{incident_id}/auto-resolve"
                plan = replica.api.post(path, json={"dry_run": True}).json()["plan"]
                started = replica.api.post(
                    path,
                    json={"dry_run": False, "fingerprint": plan["fingerprint"]},
                    headers={"Idempotency-Key": f"auto-resolve-{incident_id}"},
                )
            except (httpx.HTTPError, KeyError, ValueError):
                continue
            if started.status_code == 200:
                return int(started.json()["run"]["id"])
        return None

    def run_status(self, run_id: int) -> str:
        """A playbook run's status, read from the database."""
        with self.engine.connect() as conn:
            value = conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar()
        return str(value or "")

    def ops_calls(self, path_part: str) -> int:
        """Requests for ``path_part`` the ops stand-in received: answered or held by a fault."""
        held = sum(1 for _, _, path in list(self.splunk.faults.hits) if path_part in path)
        return held + sum(1 for r in list(self.splunk.requests) if path_part in r.path)

    def latest_incident(self) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(INCIDENTS.c.id))).scalar()
        return int(value) if value is not None else None

    # what happened ---------------------------------------------------------------------------

    def incidents(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(INCIDENTS).order_by(INCIDENTS.c.id)).all())

    def hit_counts(self) -> dict[str, list[int]]:
        """Each service's incidents and their hit counts."""
        found: dict[str, list[int]] = {}
        for row in self.incidents():
            found.setdefault(row.service, []).append(row.hit_count)
        return found

    def analyses_pending(self) -> list[str]:
        """Services whose incident still waits for its root-cause analysis."""
        return [r.service for r in self.incidents() if r.rca_status == "pending"]

    def pending_messages(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).where(OUTBOX.c.status == "pending")).scalar_one()
            )

    def cards_posted(self) -> dict[str, int]:
        """Slack cards posted per service."""
        return {service: len(times) for service, times in self.card_posts().items()}

    def pending_summary(self) -> list[tuple[str, str, int, str, str]]:
        """(surface, kind, attempts, claimed_by, last error) of the messages still pending."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    OUTBOX.c.surface,
                    OUTBOX.c.kind,
                    OUTBOX.c.attempts,
                    OUTBOX.c.claimed_by,
                    OUTBOX.c.last_error,
                ).where(OUTBOX.c.status == "pending")
            ).all()
        return [(r[0], r[1], r[2], r[3], r[4][:80]) for r in rows]

    def card_posts(self) -> dict[str, list[float]]:
        """When (the Slack fake's monotonic clock) each service's card was posted."""
        posts: dict[str, list[float]] = {}
        for call in self.slack.calls_to("chat.postMessage"):
            if call.error or "thread_ts" in call.args:  # replies go in the card's thread
                continue
            text = str(call.args.get("text", ""))  # a storm digest's blocks list titles too
            for service in self.bursts:
                if f"5xx burst on {service}" in text:
                    posts.setdefault(service, []).append(call.at)
        return posts

    def teams_card_posts(self) -> dict[str, list[float]]:
        """When (monotonic) each service's card was posted to Teams (empty without Teams)."""
        if self.teams is None:
            return {}
        posts = self.teams.card_posts(f"5xx burst on {s}" for s in self.bursts)
        return {title.removeprefix("5xx burst on "): at for title, at in posts.items()}

    def pages(self) -> dict[str, int]:
        """PagerDuty incidents (what pages people) per dedup key. A trigger sent again with the
        same key (its sender died between PagerDuty's accept and our commit) is folded into
        the open incident by PagerDuty, as the real service does."""
        counts: dict[str, int] = {}
        for incident in list(self.pagerduty.incidents):
            counts[incident.incident_key] = counts.get(incident.incident_key, 0) + 1
        return counts

    def triggers_sent(self) -> int:
        return len(self.pagerduty.accepted("trigger"))

    def searches(self) -> list[tuple[float, float]]:
        """(earliest, latest) of every search the replicas ran, in the order they came."""
        found = []
        for request in list(self.splunk.requests):
            params = request.params
            if "search" not in params or "earliest_time" not in params:
                continue
            if "status>=500" not in params["search"]:
                continue
            found.append((float(params["earliest_time"]), float(params["latest_time"])))
        return found

    def wait_for(
        self,
        probe: Callable[[], T | bool | None],
        what: str,
        timeout: float = 20.0,
        poll: float = 0.1,
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value  # type: ignore[return-value]
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {r.name} ---\n{r.output()[-4000:]}" for r in self.replicas)
                raise ClusterError(f"no {what} after {timeout:.0f}s\n{logs}")
            time.sleep(poll)


@contextmanager
def cluster(workdir: Path, database_url: str, heartbeat: float = 0.5) -> Iterator[Cluster]:
    with ExitStack() as stack:
        yield Cluster(workdir, database_url, stack, heartbeat)


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], T]) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


__all__ = ["Cluster", "ClusterError", "Replica", "Traffic", "at_once", "cluster", "write_rules"]
