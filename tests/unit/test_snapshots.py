"""Endpoint snapshots: the schema refuses bad payloads by field; good ones become events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.hits import SearchQuery
from bot.errors import PermanentError
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.snapshots import example_snapshot, ingest_snapshot, parse_snapshot

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def refusal(payload: object) -> str:
    with EventStore(":memory:") as store:
        with pytest.raises(PermanentError) as refused:
            ingest_snapshot(store, payload)
        assert store.count() == 0
    return str(refused.value)


def test_a_snapshot_becomes_one_event_per_host_disk_and_service() -> None:
    payload = example_snapshot("win-app-1", AT, pending_reboot=True, agent="bot-agent 1.2")

    with EventStore(":memory:") as store:
        written = ingest_snapshot(store, payload)
        backend = LocalSearchBackend(store)
        query = "index=endpoint sourcetype=snapshot host=win-app-1"
        hits = backend.search_sync(SearchQuery(query, AT - timedelta(hours=1), AT + timedelta(1)))

    assert written == len(hits) == 1 + 2 + 3
    by_kind: dict[str, list[dict[str, str]]] = {}
    for hit in hits:
        by_kind.setdefault(hit.fields["kind"], []).append(dict(hit.fields))
    (host,) = by_kind["host"]
    assert host["os"] == "Windows Server 2019"
    assert (host["pending_reboot"], host["last_patch_days"], host["cpu_pct"]) == ("true", "9", "14")
    assert host["agent"] == "bot-agent 1.2"
    assert sorted((d["mount"], d["used_pct"]) for d in by_kind["disk"]) == [
        ("C:", "62.5"),
        ("D:", "40"),
    ]
    assert {(s["service_name"], s["running"], s["required"]) for s in by_kind["service"]} == {
        ("Spooler", "true", "true"),
        ("W32Time", "true", "true"),
        ("WinRM", "true", "true"),
    }
    assert {hit.time for hit in hits} == {AT}


def test_json_text_is_accepted_and_a_zone_is_required() -> None:
    payload = example_snapshot("db-1", AT, os="Ubuntu 24.04")

    snapshot = parse_snapshot(json.dumps(payload).encode())

    assert snapshot.host == "db-1"
    assert snapshot.taken_at == AT
    naive = {**payload, "taken_at": "2026-11-22T10:00:00"}
    assert refusal(naive).startswith("snapshot: taken_at: input should have timezone info")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cpu_pct": 140}, "cpu_pct: input should be less than or equal to 100 (got 140)"),
        ({"host": "web 1"}, "host: string should match pattern"),
        ({"disks": [{"mount": "C:", "used_pct": -1}]}, "disks.0.used_pct: input should be greater"),
        ({"services": [{"name": "WinRM"}]}, "services.0.running: required field is missing"),
        ({"services": [{"name": "x", "running": "maybe"}]}, "services.0.running: input should be"),
        ({"last_patch_days": -3}, "last_patch_days: input should be greater than or equal to 0"),
        ({"uptime": 5}, "uptime: unknown field"),
        ({"disks": [{"mount": "C:", "used_pct": 5, "fs": "ntfs"}]}, "disks.0.fs: unknown field"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(change: dict[str, object], message: str) -> None:
    assert message in refusal({**example_snapshot("win-app-1", AT), **change})


def test_missing_fields_and_non_json_are_named() -> None:
    assert refusal({"host": "x"}) == (
        "snapshot: taken_at: required field is missing; os: required field is missing; "
        "cpu_pct: required field is missing; mem_used_pct: required field is missing"
    )
    assert refusal(b"{not json").startswith("snapshot: body: not valid JSON")
    assert "snapshot: body: input should be a valid dictionary" in refusal([1, 2])
