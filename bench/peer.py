"""Side by side with Alertmanager: the same driver pushes the same alerts to both, on loopback.

* Alertmanager: Debian's ``prometheus-alertmanager`` (``make bench-deps``), when installed;
  otherwise its side is skipped with a message and the ratios are null. It notifies a webhook
  receiver in this process. Route: ``group_by: [alertname]``, ``group_wait: 0s``.
* The bot: ``run_bot.py run`` on a fresh SQLite file, push ingest on (one sender, the default
  route: group by ``alertname``), posting cards to the loopback Slack fake (in this process)
  with no outbound rate limit (Alertmanager's webhook has none either), RCA off.

Scenarios, each run on fresh servers, sides interleaved (``--runs``, medians reported):

1. idle: a new alert in a new group, then its first notification (``--probes`` times, after
   one uncounted probe that warms the server up);
2. storm: ``--alerts`` alerts over ``--groups`` groups, pushed in batches of ``--batch`` over
   one keep-alive connection: the ingest rate (alerts / time until the last push answered),
   the time until every group's first notification arrived, and the server's peak memory
   (VmHWM);
3. wide storm, on fresh servers: ``--alerts`` alerts over ``--wide-groups`` groups (0: not
   run): the time from the first push until every group's first notification, and the peak
   memory.

Ends with one JSON line: ``{"bench": "peer", "ingest_ratio", "first_notify_ratio",
"memory_ratio", "p99_ms", "am_version", "wide_time_ratio", "wide_memory_ratio"}`` (ratios
bot / Alertmanager; ``p99_ms`` is the bot's idle p99).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project root on sys.path
import httpx
from _common import ROOT, emit, median, percentile, spread
from _peer_sinks import SlackSink, Webhook

from tests.fakes.slack import BOT_TOKEN, CHANNEL, SIGNING_SECRET

AM_BINARY = "prometheus-alertmanager"
TOKEN = "bench-peer-token-0f9e8d7c6b5a"
WAIT = 600.0  # seconds any one wait may take before the run is called failed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"peer: timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(0.0005)


# servers ---------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    headers: dict[str, str]
    seen: Callable[[], dict[str, float]]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def am_version() -> str | None:
    if shutil.which(AM_BINARY) is None:
        return None
    out = subprocess.run([AM_BINARY, "--version"], capture_output=True, text=True, timeout=10)
    found = re.search(r"version (\S+)", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def start_alertmanager(folder: Path, hook: Webhook) -> Server:
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [alertname]\n"
        "  group_wait: 0s\n"
        "  group_interval: 1m\n"
        "  repeat_interval: 4h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{hook.port}/\n"
        "        send_resolved: false\n"
    )
    log = folder / "alertmanager.log"
    process = subprocess.Popen(
        [
            AM_BINARY,
            f"--config.file={config}",
            f"--storage.path={folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    server = Server("alertmanager", url, process, {}, lambda: hook.seen.first, log)
    _await_ready(server, "/-/ready")
    return server


def start_bot(folder: Path, slack: SlackSink) -> Server:
    port = free_port()
    settings = folder / "settings.yml"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    settings.write_text(
        "push:\n"
        "  senders:\n"
        f"    - {{name: bench, token_sha256: {digest}, rate: 100000, burst: 100000}}\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "SPLUNK_", "SLACK_", "PAGERDUTY_", "TEAMS_", "AWS_"))
    }
    env.update(
        BOT_SETTINGS_FILE=str(settings),
        BOT_DATABASE_URL=f"sqlite:///{folder / 'bot.db'}",
        BOT_LOCAL_EVENTS_PATH=str(folder / "events.db"),
        BOT_HTTP_HOST="127.0.0.1",
        BOT_HTTP_PORT=str(port),
        BOT_GENERATOR="false",
        BOT_SHIPPED_RULES="false",
        BOT_RCA="off",
        BOT_LOG_LEVEL="WARNING",
        BOT_MAX_BODY_BYTES=str(8 * 1024 * 1024),
        BOT_OUTBOX_RATE_LIMITS=json.dumps({"slack": {"rate": 100000, "burst": 100000}}),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.fake.api_url,
        SLACK_DEFAULT_CHANNEL=CHANNEL,
    )
    log = folder / "bot.log"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_bot.py"), "run"],
        env=env,
        cwd=folder,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def seen() -> dict[str, float]:
        slack.scan()
        return slack.seen.first

    server = Server("bot", url, process, {"Authorization": f"Bearer {TOKEN}"}, seen, log)
    _await_ready(server, "/ready")
    return server


def _await_ready(server: Server, path: str) -> None:
    def ready() -> bool:
        if server.process.poll() is not None:
            raise SystemExit(f"peer: {server.name} exited; its log:\n{server.log.read_text()}")
        try:
            return httpx.get(server.url + path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 60, f"{server.name} to be ready")


# the driver ------------------------------------------------------------------------------------


def alert(name: str, instance: str, kind: str, now: datetime) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "instance": instance, "job": "bench", "severity": "warning"},
        "annotations": {"summary": kind},
        "startsAt": now.isoformat().replace("+00:00", "Z"),
        "endsAt": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }


def _notified(server: Server, name: str) -> Callable[[], bool]:
    return lambda: name in server.seen()


def idle(server: Server, client: httpx.Client, probes: int, run: int) -> list[float]:
    """Milliseconds from posting a new alert to its group's first notification. One probe
    first, on each side, is not counted: it measures a server's start (the bot compiles its
    SQL statements on first use), not an idle server."""
    out = []
    for i in range(-1, probes):
        name = f"P{run * 10_000 + i + 1}"
        body = json.dumps([alert(name, "probe-1", "probe", datetime.now(UTC))])
        started = time.monotonic()
        answer = client.post(
            server.url + "/api/v2/alerts",
            content=body,
            headers={**server.headers, "content-type": "application/json"},
        )
        answer.raise_for_status()
        wait_for(_notified(server, name), 30, f"{server.name}'s notification of {name}")
        if i >= 0:
            out.append((server.seen()[name] - started) * 1000)
        time.sleep(0.02)
    return out


def storm(
    server: Server, client: httpx.Client, alerts: int, groups: int, batch: int
) -> dict[str, float]:
    now = datetime.now(UTC)
    bodies = [
        json.dumps(
            [
                alert(f"G{i % groups}", f"host-{i}", "storm", now)
                for i in range(s, min(s + batch, alerts))
            ]
        ).encode()
        for s in range(0, alerts, batch)
    ]
    headers = {**server.headers, "content-type": "application/json"}
    started = time.monotonic()
    for body in bodies:
        client.post(server.url + "/api/v2/alerts", content=body, headers=headers).raise_for_status()
    ingested = time.monotonic() - started
    names = {f"G{g}" for g in range(groups)}

    def all_notified() -> bool:
        seen = server.seen()
        return names <= seen.keys()

    wait_for(all_notified, WAIT, f"{server.name} to notify all {groups} groups")
    seen = server.seen()
    last = max(seen[n] for n in names)
    return {
        "rate": alerts / ingested,
        "first_notify_s": last - started,
        "memory_mib": peak_mib(server.process.pid),
    }


def one_run(side: str, args: argparse.Namespace, run: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with served(side) as (server, client):
        out["latencies"] = idle(server, client, args.probes, run)
        out.update(storm(server, client, args.alerts, args.groups, args.batch))
    if args.wide_groups:
        with served(side) as (server, client):
            wide = storm(server, client, args.alerts, args.wide_groups, args.batch)
        out["wide_s"], out["wide_mib"] = wide["first_notify_s"], wide["memory_mib"]
    return out


@contextlib.contextmanager
def served(side: str) -> Iterator[tuple[Server, httpx.Client]]:
    """A fresh server of ``side`` with its notification sink, and a keep-alive client."""
    with tempfile.TemporaryDirectory(prefix=f"peer-{side}-") as tmp:
        folder = Path(tmp)
        sink: Webhook | SlackSink = Webhook() if side == "alertmanager" else SlackSink()
        try:
            if isinstance(sink, Webhook):
                server = start_alertmanager(folder, sink)
            else:
                server = start_bot(folder, sink)
            try:
                with httpx.Client(timeout=120) as client:
                    yield server, client
            finally:
                server.stop()
        finally:
            sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--wide-groups", type=int, default=10_000)
    args = parser.parse_args()
    version = am_version()
    sides = ["bot"]
    if version is None:
        print(f"Alertmanager: not installed ({AM_BINARY}; make bench-deps): its side is skipped")
    else:
        print(f"Alertmanager {version} ({AM_BINARY})")
        sides = ["alertmanager", "bot"]
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for run in range(args.runs):
        order = sides if run % 2 == 0 else list(reversed(sides))
        for side in order:
            results[side].append(one_run(side, args, run))
    summary: dict[str, dict[str, float]] = {}
    print(
        f"{args.runs} interleaved runs; storm {args.alerts:,} alerts over {args.groups:,} groups "
        f"in batches of {args.batch:,}; idle probes {args.probes}"
    )
    for side, runs in results.items():
        lat = [v for r in runs for v in r["latencies"]]
        summary[side] = {
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "rate": median([r["rate"] for r in runs]),
            "first_notify_s": median([r["first_notify_s"] for r in runs]),
            "memory_mib": median([r["memory_mib"] for r in runs]),
            "wide_s": median([r.get("wide_s", 0.0) for r in runs]),
            "wide_mib": median([r.get("wide_mib", 0.0) for r in runs]),
        }
        print(f"{side}:")
        print(
            f"  idle first notification: p50 {summary[side]['p50_ms']:.2f} ms, "
            f"p99 {summary[side]['p99_ms']:.2f} ms"
        )
        print(f"  storm ingest rate: {spread([r['rate'] for r in runs], ' alerts/s', 0)}")
        print(
            f"  every group's first notification: "
            f"{spread([r['first_notify_s'] for r in runs], ' s', 2)}"
        )
        print(f"  peak memory: {spread([r['memory_mib'] for r in runs], ' MiB', 0)}")
        if args.wide_groups:
            print(
                f"  {args.alerts:,} alerts over {args.wide_groups:,} groups: every group "
                f"notified in {spread([r['wide_s'] for r in runs], ' s', 2)}, peak memory "
                f"{spread([r['wide_mib'] for r in runs], ' MiB', 0)}"
            )
    bot = summary["bot"]
    am = summary.get("alertmanager")

    def ratio(key: str) -> float | None:
        return round(bot[key] / am[key], 3) if am and am[key] else None

    result = {
        "bench": "peer",
        "ingest_ratio": ratio("rate"),
        "first_notify_ratio": ratio("first_notify_s"),
        "memory_ratio": ratio("memory_mib"),
        "p99_ms": round(bot["p99_ms"], 2),
        "am_version": version,
        "wide_time_ratio": ratio("wide_s") if args.wide_groups else None,
        "wide_memory_ratio": ratio("wide_mib") if args.wide_groups else None,
    }
    if am:
        print(
            "ratios bot/Alertmanager: ingest rate "
            f"{result['ingest_ratio']} (goal >= 1.0), first notifications "
            f"{result['first_notify_ratio']} (goal <= 1.0), memory {result['memory_ratio']} "
            "(goal <= 0.5)"
        )
        if args.wide_groups:
            print(
                f"ratios over {args.wide_groups:,} groups: time {result['wide_time_ratio']} "
                f"(goal <= 0.5), memory {result['wide_memory_ratio']} (goal <= 0.5)"
            )
    emit(result)


if __name__ == "__main__":
    main()
