"""Prometheus metrics, one registry per process (nothing registered at import)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from detectors.feeds import FeedInfo


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rule_runs = Counter(
            "bot_rule_runs_total", "Detector runs by result", ["rule", "result"], registry=r
        )
        self.rule_duration = Histogram(
            "bot_rule_run_seconds",
            "Detector run duration (search + evaluation + ingest)",
            ["rule"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.rule_hits = Counter("bot_rule_hits_total", "Search hits", ["rule"], registry=r)
        self.rule_skipped = Counter(
            "bot_rule_skipped_total",
            "Runs skipped because the previous run was still going",
            ["rule"],
            registry=r,
        )
        self.rule_coalesced = Counter(
            "bot_rule_runs_coalesced_total",
            "Runs that covered more than one interval (a run late, failed or refused caught up)",
            ["rule"],
            registry=r,
        )
        self.rule_search_lag = Gauge(
            "bot_rule_search_lag_seconds",
            "How far the data a rule has searched trails now (now - its last window end)",
            ["rule"],
            registry=r,
        )
        self.feed = Gauge(
            "bot_feed",
            "Shared searches since start, per feed: searches, sweeps, rows, scanned_seconds "
            "(event time searched), late_found, errors, cached_events, scan_back_seconds",
            ["feed", "figure"],
            registry=r,
        )
        self.index_lag = Histogram(
            "bot_index_lag_seconds",
            "How long after its timestamp each new event was indexed (_indextime - _time)",
            ["sourcetype"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.incidents = Gauge("bot_incidents", "Incidents by state", ["state"], registry=r)
        self.incidents_created = Counter(
            "bot_incidents_created_total", "Incidents opened", registry=r
        )
        self.outbox_depth = Gauge("bot_outbox_depth", "Outbox messages waiting", registry=r)
        self.outbox_age = Gauge(
            "bot_outbox_oldest_age_seconds", "Age of the oldest waiting message", registry=r
        )
        self.outbox_dead = Gauge("bot_outbox_dead", "Messages that failed for good", registry=r)
        self.outbox_delivered = Counter(
            "bot_outbox_delivered_total", "Messages delivered", ["surface", "kind"], registry=r
        )
        self.outbox_latency = Histogram(
            "bot_outbox_delivery_seconds",
            "Time from enqueue to delivery",
            ["surface"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
            registry=r,
        )
        self.commands = Counter(
            "bot_commands_total",
            "Commands by kind, surface and result",
            ["command", "surface", "result"],
            registry=r,
        )
        self.rca_queue = Gauge("bot_rca_queue_depth", "Incidents waiting for RCA", registry=r)
        self.search = Gauge(
            "bot_search_backend",
            "Search backend figures (searches started, active, max_active, retries, relogins, "
            "capped) since start",
            ["figure"],
            registry=r,
        )
        self.search_errors = Gauge(
            "bot_search_backend_errors",
            "Search failures by kind since start",
            ["kind"],
            registry=r,
        )

        self.kill_switch = Gauge(
            "bot_kill_switch", "1 while the remediation kill switch is on", registry=r
        )
        self.remediation_refusals = Counter(
            "bot_remediation_refusals",
            "Remediations the gate refused, by the first failed check (kill_switch, role, …)",
            ["reason"],
            registry=r,
        )
        self.remediation_runs = Counter(
            "bot_remediation_runs",
            "Remediation runs that ended, by playbook, category and outcome",
            ["playbook", "category", "outcome"],
            registry=r,
        )

        self.lease_held = Gauge(
            "bot_lease_held", "1 while this replica holds the scheduler lease", registry=r
        )
        self.lease_generation = Gauge(
            "bot_lease_generation", "The scheduler lease's generation as last seen", registry=r
        )
        self.lease_takeovers = Counter(
            "bot_lease_takeovers_total", "Times this replica took the scheduler lease", registry=r
        )
        self.fenced_writes = Counter(
            "bot_fenced_writes_total",
            "Writes refused because this replica no longer held the lease they were made under",
            registry=r,
        )
        self.outbox_claims = Counter(
            "bot_outbox_claims_total", "Outbox messages this replica claimed to deliver", registry=r
        )

    def delivered(self, surface: str, kind: str, age: float) -> None:
        self.outbox_delivered.labels(surface, kind).inc()
        self.outbox_latency.labels(surface).observe(age)


def export_feeds(metrics: Metrics, feeds: Iterable[FeedInfo]) -> None:
    """Each shared search's figures as ``bot_feed{feed, figure}``."""
    for info in feeds:
        f = info.figures
        for figure, value in (
            ("searches", f.searches),
            ("sweeps", f.sweeps),
            ("rows", f.rows),
            ("scanned_seconds", f.scanned_s),
            ("late_found", f.late_found),
            ("errors", f.errors),
            ("cached_events", info.cached),
            ("scan_back_seconds", info.scan_back_s),
        ):
            metrics.feed.labels(info.name, figure).set(value)
