"""Remediation settings in the database: every replica sees them, every change is audited."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.errors import NotFound, PermanentError
from bot.store import audit
from bot.store.breakers import disable_playbook, disabled_playbooks, enable_playbook
from bot.store.db import make_engine
from bot.store.runtime_config import (
    CATEGORIES,
    CategoryPolicy,
    change_kill_switch,
    read_categories,
    read_category,
    read_kill_switch,
    save_category,
    set_kill_switch,
)
from tests.conftest import FakeClock


def _audit(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit.AUDIT).order_by(audit.AUDIT.c.id)).all()
    return [{**r._mapping, "data": json.loads(r.data_json)} for r in rows]


def test_the_kill_switch_is_idempotent_and_audited(engine: Engine, clock: FakeClock) -> None:
    assert read_kill_switch(engine).on is False
    first = change_kill_switch(engine, True, "console:ann", "api", "deploy freeze", clock.now())
    assert first.changed and first.switch.by == "console:ann"
    clock.advance(60)
    again = change_kill_switch(engine, True, "console:bob", "api", "me too", clock.now())
    assert not again.changed and again.switch == first.switch
    assert again.message.startswith("kill switch already on since ")
    assert "by console:ann: deploy freeze" in again.message
    off = set_kill_switch(engine, False, "console:bob", "api", "freeze over", clock.now())
    assert off.on is False and read_kill_switch(engine).on is False
    entries = _audit(engine)
    assert [(e["action"], e["actor"], e["result"], e["data"]) for e in entries] == [
        ("kill_switch", "console:ann", "applied", {"on": True, "reason": "deploy freeze"}),
        ("kill_switch", "console:bob", "duplicate", {"on": True, "reason": "me too"}),
        ("kill_switch", "console:bob", "applied", {"on": False, "reason": "freeze over"}),
    ]
    assert audit.verify(engine).ok


def test_the_kill_switch_needs_a_reason_and_an_actor(engine: Engine, clock: FakeClock) -> None:
    with pytest.raises(PermanentError, match="activating the kill switch needs a reason"):
        set_kill_switch(engine, True, "console:ann", "api", "  ", clock.now())
    with pytest.raises(PermanentError, match="needs an actor"):
        set_kill_switch(engine, True, "", "api", "why", clock.now())
    assert _audit(engine) == []


def test_another_replica_sees_the_switch_within_a_second(
    database_url: str, clock: FakeClock
) -> None:
    from bot.store.db import migrate

    one, two = make_engine(database_url), make_engine(database_url)
    migrate(one)
    try:
        assert read_kill_switch(two).on is False  # now cached on "replica" two
        set_kill_switch(one, True, "cli:root", "cli", "incident review", clock.now())
        started = time.monotonic()
        while not read_kill_switch(two).on:
            assert time.monotonic() - started < 1.0, "replica two did not see the switch in 1 s"
            time.sleep(0.02)
        assert read_kill_switch(one).on  # the replica that changed it sees it at once
    finally:
        one.dispose()
        two.dispose()


def test_two_replicas_switching_at_once_keep_one_activation(
    database_url: str, clock: FakeClock
) -> None:
    from bot.store.db import migrate

    engines = [make_engine(database_url) for _ in range(4)]
    migrate(engines[0])
    results: list[bool] = []

    def press(index: int) -> None:
        change = change_kill_switch(
            engines[index], True, f"console:u{index}", "api", "storm", clock.now()
        )
        results.append(change.changed)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(results) == [False, False, False, True]
        applied = [e for e in _audit(engines[0]) if e["result"] == "applied"]
        assert len(applied) == 1 and audit.verify(engines[0]).ok
    finally:
        for e in engines:
            e.dispose()


def test_categories_default_then_change_with_before_and_after(
    engine: Engine, clock: FakeClock
) -> None:
    policies = read_categories(engine)
    assert (
        tuple(policies)
        == CATEGORIES
        == (
            "network",
            "database",
            "application",
            "security",
            "infrastructure",
            "user_access",
        )
    )
    assert policies["database"] == CategoryPolicy("database")
    assert policies["database"].threshold == 0.90 and not policies["database"].auto
    changed = CategoryPolicy("database", auto=True, threshold=0.95, allowed_playbooks=("a",))
    save_category(engine, changed, "console:ann", "api", clock.now(), known_playbooks={"a"})
    assert read_category(engine, "database") == changed
    assert read_categories(engine)["network"] == CategoryPolicy("network")
    (entry,) = _audit(engine)
    assert entry["action"] == "config_category" and entry["actor"] == "console:ann"
    data = entry["data"]
    assert isinstance(data, dict)
    assert data["before"]["threshold"] == 0.9 and data["after"]["threshold"] == 0.95
    assert "threshold 0.9 -> 0.95" in str(entry["detail"])


def test_bad_category_policies_are_refused_by_name(engine: Engine, clock: FakeClock) -> None:
    with pytest.raises(NotFound, match="network, database, application"):
        read_category(engine, "storage")
    with pytest.raises(PermanentError, match="threshold"):
        save_category(engine, CategoryPolicy("network", threshold=0.4), "a", "api", clock.now())
    with pytest.raises(PermanentError, match="max_retries"):
        save_category(engine, CategoryPolicy("network", max_retries=11), "a", "api", clock.now())
    with pytest.raises(PermanentError, match="no playbook 'nope'"):
        save_category(
            engine,
            CategoryPolicy("network", allowed_playbooks=("nope",)),
            "a",
            "api",
            clock.now(),
            known_playbooks={"restart-web"},
        )
    assert _audit(engine) == []


def test_the_circuit_breaker_state(engine: Engine, clock: FakeClock) -> None:
    assert disabled_playbooks(engine) == {}
    disable_playbook(engine, "restart-web", "3 failed runs within 1h", clock.now())
    assert disabled_playbooks(engine) == {"restart-web": "3 failed runs within 1h"}
    assert enable_playbook(engine, "restart-web", "fixed the image", clock.now(), "console:ann")
    assert not enable_playbook(engine, "restart-web", "again", clock.now())
    assert disabled_playbooks(engine) == {}
    assert [e["action"] for e in _audit(engine)] == ["playbook_disabled", "playbook_enabled"]


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *argv: str
) -> tuple[int, str]:
    from bot.cli import main

    monkeypatch.setenv("BOT_DATABASE_URL", url)
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_the_cli_switches_configures_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("BOT_"):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    code, out = _cli(monkeypatch, capsys, url, "killswitch", "on", "--actor", "cli:ann")
    assert code == 1 and "activating the kill switch needs a reason" in out
    code, out = _cli(
        monkeypatch, capsys, url, "killswitch", "on", "--reason", "freeze", "--actor", "cli:ann"
    )
    assert code == 0 and out.startswith("kill switch on since ") and "by cli:ann: freeze" in out
    code, out = _cli(monkeypatch, capsys, url, "killswitch", "on", "--reason", "again")
    assert "kill switch already on since" in out and "by cli:ann: freeze" in out
    code, out = _cli(monkeypatch, capsys, url, "killswitch", "status")
    assert code == 0 and "on since" in out
    code, out = _cli(
        monkeypatch,
        capsys,
        url,
        "config",
        "set-category",
        "database",
        "threshold=0.95",
        "auto=true",
        "allowed_playbooks=recycle-worker,drain-host",
    )
    assert code == 0 and "database.threshold: 0.9 -> 0.95" in out
    assert "database.allowed_playbooks: (all) -> recycle-worker, drain-host" in out
    code, out = _cli(monkeypatch, capsys, url, "config", "set-category", "database", "threshold=2")
    assert code == 1 and "threshold: Input should be less than or equal to 1" in out
    code, out = _cli(monkeypatch, capsys, url, "config", "set-category", "storage", "auto=true")
    assert code == 1 and "the categories are network, database" in out
    code, out = _cli(monkeypatch, capsys, url, "config", "show")
    assert "kill switch on since" in out and "max_concurrent_resolutions 10" in out
    assert (
        "database        yes     yes        0.95       2 yes    recycle-worker, drain-host" in out
    )
    code, out = _cli(
        monkeypatch, capsys, url, "config", "set-category", "database", "allowed_playbooks=nope"
    )
    assert code == 1 and "nope" in out
    code, out = _cli(monkeypatch, capsys, url, "audit", "verify")
    assert (code, out.strip()) == (0, "audit chain intact: 3 entries")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(audit.AUDIT.update().where(audit.AUDIT.c.id == 2).values(reason="nothing"))
    engine.dispose()
    code, out = _cli(monkeypatch, capsys, url, "audit", "verify")
    assert code == 1 and "audit entry 2 was altered after it was written" in out


def test_the_cli_turns_a_playbook_off_and_back_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("BOT_"):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    off = ("config", "disable-playbook", "drain-host", "--reason", "flaky target group")
    code, out = _cli(monkeypatch, capsys, url, *off)
    assert (code, out.strip()) == (0, "drain-host is off: flaky target group")
    code, out = _cli(monkeypatch, capsys, url, "config", "show")
    assert "playbook drain-host is off: flaky target group" in out
    on = ("config", "enable-playbook", "drain-host", "--reason", "fixed")
    code, out = _cli(monkeypatch, capsys, url, *on)
    assert (code, out.strip()) == (0, "drain-host is on")
    code, out = _cli(monkeypatch, capsys, url, "config", "enable-playbook", "nope", "--reason", "x")
    assert code == 1 and "no playbook 'nope'" in out
