"""Remediation runs whose steps call AWS through the real executors and boto3: moto in-process,
moto on loopback through ``AWS_ENDPOINT_URL``, and botocore's Stubber for a throttled call."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.server import ThreadedMotoServer

from integrations.aws import AwsClients, AwsSettings, SsmExecutor
from tests.fakes.bedrock import aws_test_env
from tests.remediation_env import embedded

REGION = "us-east-1"
FAST = {"BOT_PLAYBOOK_AWS_POLL_INTERVAL": "10ms"}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_test_env(monkeypatch, tmp_path)


def step(name: str, executor: str, action: str, undo: str | None = None, **args: Any) -> dict:  # type: ignore[type-arg]
    out: dict[str, Any] = {
        "name": name,
        "executor": executor,
        "action": action,
        "args": args,
        "timeout": "30s",
        "reversible": True,
    }
    if undo:
        out["undo"] = undo
    return out


def playbook(pid: str, rule: str, steps: list[dict], rollback: list[dict] = ()) -> dict:  # type: ignore[type-arg, assignment]
    return {
        "id": pid,
        "title": f"test {pid}",
        "category": "infrastructure",
        "embedded_only": True,  # it also ends the generated scenario, so verification clears
        "matches": {"rules": [rule]},
        "target": "host:{host}",
        "steps": steps,
        "rollback": list(rollback),
        "verify": {"wait": "30s"},
        "cooldown": "0s",
    }


def clean_disk(instance_id: str) -> dict:  # type: ignore[type-arg]
    return playbook(
        "clean-disk",
        "disk-filling",
        [
            step(
                "clean",
                "ssm",
                "run-command",
                document="AWS-RunShellScript",
                instance_ids=instance_id,
                commands=["journalctl --vacuum-time=7d"],
            ),
            step(
                "recycle",
                "lambda",
                "invoke",
                function="recycle-worker",
                payload='{"host": "{host}"}',
            ),
            step("end it", "generator", "end-scenario", scenario="disk-filling"),
        ],
    )


SCALE_UP = playbook(
    "scale-up",
    "disk-filling",
    [
        step(
            "scale up",
            "ecs",
            "set-desired-count",
            undo="scale back",
            cluster="prod",
            service="web",
            count=4,
            wait_stable_s=0.3,
        ),
    ],
    [
        step(
            "scale back",
            "ecs",
            "set-desired-count",
            cluster="prod",
            service="web",
            count=2,
            wait_stable_s=0.3,
        )
    ],
)


def instance(host: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    made = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": host}]}],
    )
    return str(made["Instances"][0]["InstanceId"])


def function(name: str = "recycle-worker") -> None:
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="lambda-role", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
    )


async def test_ssm_and_lambda_steps_run_in_moto_and_the_incident_resolves(tmp_path: Path) -> None:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        found = instance("db-1")
        function()
        async with embedded(tmp_path, [clean_disk(found)], env=FAST) as env:
            incident = await env.fire("disk-filling")
            preview = await env.remediation.preview(incident, "console:ann", "clean-disk")
            assert [s.plan.target for s in preview.steps] == [
                f"ssm:{found}",
                "lambda:recycle-worker",
                "generator:disk-filling",
            ]
            run = await env.press(incident, playbook_id="clean-disk")
            await env.settle()
            steps = env.steps(run.id)
            assert [s.status for s in steps] == ["succeeded"] * 3, [s.error for s in steps]
            assert f"{found} Success" in steps[0].output
            assert steps[1].output == 'status 200: {"host":"db-1"}'
            await env.verify()
            assert env.state(incident) == "resolved"
        sent = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
        assert sent[0]["DocumentName"] == "AWS-RunShellScript"


async def test_an_ecs_step_that_never_stabilises_is_undone_in_moto(tmp_path: Path) -> None:
    with mock_aws():
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
        )
        ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=2)
        async with embedded(tmp_path, [SCALE_UP], env=FAST) as env:
            incident = await env.fire("disk-filling")
            run = await env.press(incident, playbook_id="scale-up")
            await env.settle()
            row = env.run_row(run.id)
            assert row.status == "rolled_back"
            assert "not stable within 0.3s" in row.detail
            assert [(s.phase, s.status) for s in env.steps(run.id)] == [
                ("step", "failed"),
                ("rollback", "failed"),  # moto never reports a stable service either
            ]
            assert "except scale back" in row.detail
        (service,) = ecs.describe_services(cluster="prod", services=["web"])["services"]
        assert service["desiredCount"] == 2  # the rollback put it back


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    httpx.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=5)
    try:
        yield url
    finally:
        server.stop()


async def test_a_run_reaches_aws_through_aws_endpoint_url(tmp_path: Path, moto_server: str) -> None:
    found = instance("db-1")
    function()
    async with embedded(tmp_path, [clean_disk(found)], env=FAST) as env:
        incident = await env.fire("disk-filling")
        run = await env.press(incident, playbook_id="clean-disk")
        await env.settle()
        assert [s.status for s in env.steps(run.id)] == ["succeeded"] * 3
        await env.verify()
        assert env.state(incident) == "resolved"
    assert boto3.client("ssm", region_name=REGION).list_commands()["Commands"]


async def test_a_throttled_call_is_retried_up_to_the_category_maximum(tmp_path: Path) -> None:
    client = boto3.client("ssm", region_name=REGION)
    stubber = Stubber(client)
    for _ in range(4):  # more than the category lets it try
        stubber.add_client_error(
            "send_command", "ThrottlingException", "Rate exceeded", http_status_code=400
        )
    stubber.activate()
    retrying = playbook(
        "retrying",
        "disk-filling",
        [
            {
                **step(
                    "clean",
                    "ssm",
                    "run-command",
                    document="AWS-RunShellScript",
                    instance_ids="i-0123456789abcdef0",
                ),
                "retries": 5,
                "retry_delay": "0s",
            }
        ],
    )
    async with embedded(tmp_path, [retrying], env=FAST) as env:
        clients = AwsClients(AwsSettings(region=REGION, poll_s=0.01), prebuilt={"ssm": client})
        env.remediation.deps.executors = {
            **env.remediation.deps.executors,
            "ssm": SsmExecutor(clients),
        }
        incident = await env.fire("disk-filling")
        run = await env.press(incident, playbook_id="retrying")
        await env.settle()
        (only,) = env.steps(run.id)
        # the category allows 2 retries (the step would allow 5): 3 attempts, all throttled
        assert only.attempts == 3 and only.status == "failed"
        assert "Rate exceeded" in only.error or "Throttling" in only.error
