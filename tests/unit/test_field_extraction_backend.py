"""Extraction in the local backend: on read, once per event, only for events a query asks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bot.domain.hits import SearchQuery
from detectors.fields import FieldExtractor, Fields
from integrations.local import Event
from integrations.local.backend import LocalSearchBackend
from integrations.local.events import EventStore

NOW = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)


class CountingExtractor(FieldExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def extract(self, sourcetype: str, raw: str) -> Fields:
        self.calls += 1
        return super().extract(sourcetype, raw)


def sshd(t: datetime, message: str) -> Event:
    return Event(
        t,
        f"{t:%b %e %H:%M:%S} LabSZ sshd[{t.second + 1000}]: {message}",
        index="os",
        sourcetype="linux_secure",
        source="/var/log/auth.log",
        host="LabSZ",
    )


def guessing() -> list[Event]:
    """Failed logins from 23 addresses; six of them try 10 times or more within the window."""
    rng = random.Random(7)
    events = []
    for n in range(23):
        tries = 10 + n if n < 6 else 1 + n % 5
        for i in range(tries):
            t = NOW - timedelta(seconds=rng.uniform(1, 110))
            user = rng.choice(["root", "admin", "invalid user oracle"])
            events.append(
                sshd(t, f"Failed password for {user} from 203.0.113.{n} port {40000 + i} ssh2")
            )
    events.append(
        sshd(NOW - timedelta(seconds=5), "Accepted publickey for ops from 10.0.0.5 port 22 ssh2")
    )
    return events


def search(backend: LocalSearchBackend, text: str) -> list[dict[str, str]]:
    query = SearchQuery(text=text, earliest=NOW - timedelta(minutes=2), latest=NOW)
    return [dict(hit.fields) for hit in backend.search_sync(query)]


def test_the_password_guessing_rule_gets_one_row_per_address() -> None:
    store = EventStore(":memory:")
    store.add(guessing())
    backend = LocalSearchBackend(store)

    rows = search(
        backend,
        'index=os sourcetype=linux_secure "Failed password" | stats count by host, src'
        " | where count >= 10",
    )

    assert sorted(r["src"] for r in rows) == [f"203.0.113.{n}" for n in range(6)]
    assert all(r["host"] == "LabSZ" for r in rows)
    (accepted,) = search(backend, "index=os action=success | table user src app")
    assert accepted == {"user": "ops", "src": "10.0.0.5", "app": "sshd"}


def test_extraction_runs_once_per_event_and_only_when_asked() -> None:
    store = EventStore(":memory:")
    events = guessing()
    store.add(events)
    counting = CountingExtractor()
    backend = LocalSearchBackend(store, counting)

    search(backend, "index=os sourcetype=linux_secure | stats count by host")
    assert counting.calls == 0  # built-in fields only: no event was extracted

    search(backend, 'index=os "Accepted" | stats count by src, user')
    assert counting.calls == 1  # the search term ruled out every other event

    counting.calls = 0
    search(backend, "index=os | where isnotnull(src) | eval u=user | stats count by src, u, action")
    assert counting.calls == len(events)  # four fields asked, one extraction per event


def test_precedence_explicit_then_sourcetype_then_key_value() -> None:
    store = EventStore(":memory:")
    line = (
        "Dec  5 19:59:00 LabSZ sshd[1]: Failed password for root from 10.1.1.1 port 2 ssh2 src=kv"
    )
    store.add(
        [
            Event(NOW - timedelta(seconds=60), line, index="os", sourcetype="linux_secure"),
            Event(
                NOW - timedelta(seconds=50),
                line,
                index="os",
                sourcetype="linux_secure",
                fields={"src": "explicit"},
            ),
            Event(NOW - timedelta(seconds=40), line, index="os", sourcetype="other"),
        ]
    )
    rows = search(LocalSearchBackend(store), "index=os | table sourcetype src")
    assert rows == [
        {"sourcetype": "other", "src": "kv"},
        {"sourcetype": "linux_secure", "src": "explicit"},
        {"sourcetype": "linux_secure", "src": "10.1.1.1"},
    ]


def test_event_results_carry_their_extracted_fields() -> None:
    store = EventStore(":memory:")
    store.add(guessing()[:1])
    (fields,) = search(LocalSearchBackend(store), "index=os")
    assert {"src", "user", "action", "src_port", "dest", "process", "pid", "app"} <= set(fields)
    assert fields["action"] == "failure"
