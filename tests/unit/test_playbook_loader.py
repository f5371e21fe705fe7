"""Playbook files: every problem as ``file:line: message``, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.model import Rule
from detectors.rules import load_rules
from playbooks.loader import (
    SHIPPED,
    PlaybookFileError,
    is_playbook_file,
    load_playbooks,
    read_playbooks,
    split_paths,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "playbooks"
BAD = FIXTURES / "bad"
GOOD = FIXTURES / "good"


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules([])


def problems(path: Path, rules: list[Rule], shipped: bool = False) -> list[str]:
    return [str(p) for p in read_playbooks([path], include_shipped=shipped, rules=rules)[1]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "unknown-key",
            [
                "10: unknown key 'steps.0.retires' (did you mean 'steps.0.retries'?)",
                "12: unknown key 'cooldwon' (did you mean 'cooldown'?)",
            ],
        ),
        (
            "unknown-executor",
            [
                "8: steps.0.executor: unknown executor 'ssn' (did you mean 'ssm'?) "
                "(known: ecs, elb, generator, http, lambda, shell, ssm)"
            ],
        ),
        (
            "unknown-action",
            [
                "9: steps.0.action: executor 'ecs' has no action 'restart-service' "
                "(its actions: force-new-deployment, set-desired-count)"
            ],
        ),
        (
            "missing-arg",
            [
                "10: steps.0.args: missing required argument 'service' of "
                "'ecs force-new-deployment'",
                "12: steps.0.args: 'ecs force-new-deployment' takes no argument 'servce' "
                "(did you mean 'service'?) (it takes: cluster, service, wait_stable_s)",
            ],
        ),
        (
            "unknown-label",
            [
                "12: steps.0.args.instance_ids: '{instance_id}' is neither a parameter nor a "
                "label of every matched rule: disk-filling, disk-fill-forecast do not produce "
                "'instance_id' (rules checked: disk-filling, disk-fill-forecast)"
            ],
        ),
        (
            "bad-duration",
            ["11: cooldown: bad duration 'half an hour': use forms like 30s, 5m, 1h, 1d"],
        ),
        (
            "undo-nothing",
            [
                "11: steps.0.undo: step 'drain' names undo 'put it back', which is not a "
                "rollback step (rollback steps: 'register again')"
            ],
        ),
        (
            "unknown-rule",
            ["5: matches.rules: unknown rule 'disk-filing' (did you mean 'disk-filling'?)"],
        ),
        (
            "shell-not-embedded",
            [
                "8: steps.0.executor: 'shell' runs only on the embedded default: set "
                "'embedded_only: true' on the playbook"
            ],
        ),
    ],
)
def test_each_bad_file_reports_exactly_its_problem(
    name: str, expected: list[str], rules: list[Rule]
) -> None:
    path = BAD / f"{name}.yaml"
    assert problems(path, rules) == [f"{path}:{line}" for line in expected]


def test_a_duplicate_id_names_both_places(rules: list[Rule]) -> None:
    path = BAD / "duplicate-id.yaml"
    shipped = SHIPPED / "free-disk-space.yaml"
    assert problems(path, rules, shipped=True) == [
        f"{path}:2: duplicate id 'free-disk-space' (first defined at {shipped}:2)"
    ]


def test_every_problem_of_a_folder_comes_at_once(rules: list[Rule]) -> None:
    with pytest.raises(PlaybookFileError) as caught:
        load_playbooks([BAD], rules=rules)
    files = {Path(p.file).name for p in caught.value.problems}
    assert files == {p.name for p in BAD.glob("*.yaml")}
    assert str(caught.value).count("\n") == len(caught.value.problems) - 1


def test_a_label_the_matched_rules_produce_or_a_parameter_is_fine(rules: list[Rule]) -> None:
    registry = load_playbooks([GOOD], include_shipped=False, rules=rules)
    assert registry.ids() == ("drain-web", "restart-checkout")
    restart = registry.get("restart-checkout")
    assert restart is not None and restart.source_file == str(GOOD / "restart-checkout.yaml")
    assert restart.steps[0].args == {"cluster": "{cluster}", "service": "{service}"}


def test_a_label_only_some_matched_rules_produce_names_those(
    tmp_path: Path, rules: list[Rule]
) -> None:
    path = tmp_path / "mount.yaml"
    path.write_text(
        "id: by-category\ntitle: t\ncategory: infrastructure\n"
        "matches: {rules: [disk-filling, high-cpu]}\n"
        "steps:\n  - name: s\n    executor: ssm\n    action: run-command\n"
        "    args: {document: AWS-RunShellScript, commands: ['df -h {mount}']}\n"
    )
    assert problems(path, rules) == [
        f"{path}:9: steps.0.args.commands.0: '{{mount}}' is neither a parameter nor a label of "
        "every matched rule: high-cpu does not produce 'mount' "
        "(rules checked: high-cpu, disk-filling)"
    ]


def test_without_rules_nothing_is_checked_against_them() -> None:
    registry = load_playbooks([BAD / "unknown-rule.yaml"], include_shipped=False)
    assert registry.ids() == ("unknown-rule",)


def test_a_rule_suggesting_no_playbook_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - id: my-disk\n"
        "    title: Disk\n"
        "    type: threshold\n"
        "    query: index=metrics metric=disk_used_pct value>=95\n"
        "    threshold: {op: '>=', value: 1}\n"
        "    severity: high\n"
        "    category: infrastructure\n"
        "    suggested_playbook: free-disk-spac\n"
    )
    mine = load_rules([path], include_shipped=False)
    assert problems(GOOD / "several.yaml", mine, shipped=True) == [
        f"{path}:9: suggested_playbook: no playbook 'free-disk-spac' "
        "(did you mean 'free-disk-space'?)"
    ]
    # the shipped library turned off: its ids are still names a rule may use
    path.write_text(path.read_text().replace("free-disk-spac\n", "free-disk-space\n"))
    mine = load_rules([path], include_shipped=False)
    assert problems(GOOD / "several.yaml", mine, shipped=False) == []


def test_embedded_only_playbooks_are_left_out_of_other_deployments(rules: list[Rule]) -> None:
    embedded = load_playbooks([], rules=rules, embedded=True)
    other = load_playbooks([], rules=rules, embedded=False)
    assert "demo-free-disk-space" in embedded.ids()
    assert "demo-free-disk-space" not in other.ids()
    assert all(not p.embedded_only for p in other.all())


def test_yaml_errors_and_shapes_are_problems_too(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\nsteps: [\n")
    listed = tmp_path / "listed.yaml"
    listed.write_text("playbooks: {id: x}\n")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("playbooks:\n  - just text\n")
    found = [str(p) for p in read_playbooks([tmp_path], include_shipped=False)[1]]
    assert f"{listed}:1: 'playbooks' must be a list of playbooks" in found
    assert f"{wrong}:2: a playbook must be a mapping, got the text 'just text'" in found
    assert any(line.startswith(f"{broken}:3: invalid YAML") for line in found)


def test_parameters_are_checked_for_type_and_pattern(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "id: p\ntitle: t\ncategory: application\nmatches: {categories: [application]}\n"
        "parameters:\n"
        "  count: {type: integer, default: many}\n"
        "  name: {pattern: '[a-z'}\n"
        "  host_name: {defualt: x}\n"
        "steps:\n  - name: s\n    executor: ecs\n    action: set-desired-count\n"
        "    args: {cluster: c, service: s, count: '{count}'}\n"
    )
    found = [str(p) for p in read_playbooks([path], include_shipped=False)[1]]
    assert found == [
        f"{path}:8: unknown key 'parameters.host_name.defualt' "
        "(did you mean 'parameters.host_name.default'?)"
    ]
    path.write_text(path.read_text().replace("  host_name: {defualt: x}\n", ""))
    found = [str(p) for p in read_playbooks([path], include_shipped=False)[1]]
    assert found[0] == f"{path}:6: parameters.count.default: 'many' is not of type integer"
    assert found[1].startswith(f"{path}:7: parameters.name.pattern: bad regex '[a-z'")


def test_files_are_told_apart_by_content(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text("rules:\n  - id: r\n    runbook: |\n      steps: one, two\n")
    assert not is_playbook_file(rule)
    assert is_playbook_file(GOOD / "several.yaml")
    assert is_playbook_file(GOOD / "restart-checkout.yaml")
    (tmp_path / "broken.yaml").write_text("steps: [\n")
    rule_files, playbook_files = split_paths([tmp_path, GOOD / "several.yaml"])
    assert rule_files == [rule]
    assert playbook_files == [tmp_path / "broken.yaml", GOOD / "several.yaml"]
