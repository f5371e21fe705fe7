"""The shipped playbooks against the shipped rules and the generator; ``run_bot.py validate``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from detectors.model import Rule
from detectors.rules import load_rules
from detectors.runner import run_rule
from detectors.window import Window
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.generator import Generator
from integrations.local.scenarios import SCENARIOS
from playbooks.catalog import CATALOG
from playbooks.loader import SHIPPED, load_playbooks, read_playbooks
from playbooks.registry import Registry
from playbooks.spec import Playbook

FIXTURES = Path(__file__).parent.parent / "fixtures" / "playbooks"
NOW = datetime(2026, 11, 22, 10, 0, 7, 250_000, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules([])


@pytest.fixture(scope="module")
def registry(rules: list[Rule]) -> Registry:
    return load_playbooks([], rules=rules, embedded=True)


def embedded_playbooks(registry: Registry) -> list[Playbook]:
    return [p for p in registry.all() if p.embedded_only]


def test_every_shipped_playbook_loads_against_the_shipped_rules(
    rules: list[Rule], registry: Registry
) -> None:
    playbooks, problems = read_playbooks([], rules=rules)
    assert problems == []
    assert len(registry) == len(playbooks) >= 12
    for playbook in registry.all():
        assert playbook.description and playbook.category and playbook.steps
        assert playbook.source_file.startswith(str(SHIPPED))
        for step in (*playbook.steps, *playbook.rollback):
            assert step.action in CATALOG[step.executor]


def test_the_aws_playbooks_are_what_the_issue_asks_for(rules: list[Rule]) -> None:
    registry = load_playbooks([], rules=rules, embedded=False)
    actions = {
        p.id: [(s.executor, s.action) for s in (*p.steps, *p.rollback)] for p in registry.all()
    }
    assert actions == {
        "restart-ecs-service": [("ecs", "force-new-deployment")],
        "free-disk-space": [("ssm", "run-command")],
        "recycle-worker": [("lambda", "invoke")],
        "drain-host": [("elb", "deregister-target"), ("elb", "register-target")],
    }
    restart = registry.get("restart-ecs-service")
    assert restart is not None and restart.irreversible_steps == restart.steps
    drain = registry.get("drain-host")
    assert drain is not None and drain.irreversible_steps == ()
    assert drain.steps[0].undo == drain.rollback[0].name
    # every rule that names a playbook names one a production deployment has
    for rule in rules:
        if rule.suggested_playbook:
            assert registry.get(rule.suggested_playbook) is not None, rule.id
            assert registry.matching(rule.id, rule.category, {})[0].id == rule.suggested_playbook


def test_the_disk_cleanup_never_puts_a_label_into_the_shell(registry: Registry) -> None:
    cleanup = registry.get("free-disk-space")
    assert cleanup is not None
    commands = cleanup.steps[0].args["commands"]
    assert isinstance(commands, list) and commands
    assert not any("{" in line for line in commands)
    assert cleanup.steps[0].args["tag"] == "{instance_tag}"
    assert cleanup.parameters["instance_tag"].pattern


def test_embedded_playbooks_end_a_known_scenario_low_risk_and_reversible(
    registry: Registry,
) -> None:
    playbooks = embedded_playbooks(registry)
    assert len(playbooks) >= 8
    for playbook in playbooks:
        (step,) = playbook.steps
        assert (step.executor, step.action) == ("generator", "end-scenario")
        scenario = SCENARIOS[str(step.args["scenario"])]
        assert ("host" in step.args) == bool(scenario.host), playbook.id
        if scenario.host:
            assert step.args["host"] == "{host}"
        assert playbook.risk == "low" and step.reversible and not playbook.irreversible_steps


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.db") as events:
        yield events


async def test_each_embedded_playbook_is_first_for_the_incident_its_scenario_raises(
    rules: list[Rule], registry: Registry, store: EventStore
) -> None:
    generator = Generator(store, seed=11)
    store.add(generator.noise(NOW, 600))
    playbooks = embedded_playbooks(registry)
    for playbook in playbooks:
        generator.inject(str(playbook.steps[0].args["scenario"]), NOW)
    backend = LocalSearchBackend(store)
    by_rule = {r.id: r for r in rules}
    for playbook in playbooks:
        scenario = SCENARIOS[str(playbook.steps[0].args["scenario"])]
        rule = by_rule[playbook.matches.rules[0]]
        result = await run_rule(rule, backend, Window.sliding(NOW, rule.window, None), str)
        alerts = [a for a in result.alerts if not scenario.host or a.host == scenario.host]
        assert alerts, f"{scenario.name} does not fire {rule.id}"
        alert = alerts[0]
        labels = {**dict(alert.group), "host": alert.host, "service": alert.service}
        found = registry.matching(rule.id, rule.category, labels)
        assert found[0].id == playbook.id, rule.id


def run_validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BOT_RULES_PATH", "BOT_PLAYBOOKS_PATH", "BOT_SETTINGS_FILE", "BOT_ROLES_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_env")
def test_validate_accepts_the_shipped_files_and_a_good_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_validate(capsys) == (0, "all files are valid\n", "")
    assert run_validate(capsys, str(FIXTURES / "good")) == (0, "all files are valid\n", "")


@pytest.mark.usefixtures("clean_env")
def test_validate_prints_every_problem_of_a_bad_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = FIXTURES / "bad"
    code, out, err = run_validate(capsys, str(bad), str(FIXTURES / "good"))
    assert code == 1
    lines = out.splitlines()
    assert f"{bad}/unknown-key.yaml:12: unknown key 'cooldwon' (did you mean 'cooldown'?)" in lines
    assert (
        f"{bad}/duplicate-id.yaml:2: duplicate id 'free-disk-space' "
        f"(first defined at {SHIPPED}/free-disk-space.yaml:2)"
    ) in lines
    assert {Path(line.split(":")[0]).name for line in lines} == {p.name for p in bad.glob("*.yaml")}
    assert err == f"{len(lines)} problem(s) found\n"


def test_validate_reads_bot_playbooks_path(
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "restart.yaml").write_text((FIXTURES / "bad" / "unknown-executor.yaml").read_text())
    monkeypatch.setenv("BOT_PLAYBOOKS_PATH", f"{mine}:{tmp_path / 'missing'}")
    code, out, _ = run_validate(capsys)
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path / 'missing'}: no such file or folder",
        f"{mine}/restart.yaml:8: steps.0.executor: unknown executor 'ssn' (did you mean "
        "'ssm'?) (known: ecs, elb, generator, http, lambda, shell, ssm)",
    ]
