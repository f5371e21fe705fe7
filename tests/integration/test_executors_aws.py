"""The AWS executors through the real boto3 client: moto in-process and on loopback, and
botocore's Stubber where moto cannot express an outcome (a failing SSM command, an ECS service
that becomes stable or whose rollout FAILED, a function error, a throttled call)."""

from __future__ import annotations

import io
import json
import socket
import time
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

from bot.errors import PermanentError, TransientError
from bot.ports import ParamValue
from integrations.aws import (
    AwsClients,
    AwsSettings,
    EcsExecutor,
    ElbExecutor,
    LambdaExecutor,
    SsmExecutor,
)
from integrations.executors import build_executors, load_executor_settings
from tests.fakes.bedrock import aws_test_env

REGION = "us-east-1"
COMMAND = "5f2b6c1e-0d1a-4a59-9c43-7c1e2f3a4b5c"  # AWS command ids are UUIDs
FAST = AwsSettings(region=REGION, poll_s=0.01)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_test_env(monkeypatch, tmp_path)


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def stubbed(service: str) -> tuple[AwsClients, Stubber]:
    client = boto3.client(service, region_name=REGION)
    stubber = Stubber(client)
    stubber.activate()
    return AwsClients(FAST, prebuilt={service: client}), stubber


def instance(tags: dict[str, str] | None = None) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    spec: dict[str, Any] = {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1}
    if tags:
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        spec["TagSpecifications"] = [{"ResourceType": "instance", "Tags": tag_list}]
    return str(ec2.run_instances(**spec)["Instances"][0]["InstanceId"])


# planning ------------------------------------------------------------------------------------


async def test_plans_say_what_would_run_where_without_calling_aws() -> None:
    # no moto here and a client that would fail at once: a plan must not touch AWS
    clients = AwsClients(AwsSettings(region=REGION))
    ecs = await EcsExecutor(clients).plan(
        "force-new-deployment", {"cluster": "prod", "service": "web"}, 900
    )
    assert ecs.target == "ecs:prod/web"
    assert ecs.description == (
        "ecs update_service cluster=prod service=web forceNewDeployment=true,"
        " then wait until stable (at most 600s)"
    )
    capped = await EcsExecutor(clients).plan(
        "set-desired-count", {"cluster": "prod", "service": "web", "count": "4"}, 120
    )
    assert capped.param("count") == 4 and "at most 120s" in capped.description

    ssm = await SsmExecutor(clients).plan(
        "run-command",
        {"document": "AWS-RunShellScript", "tag": "role=db", "commands": ("df -h", "du -sh /var")},
        300,
    )
    assert ssm.target == "ssm:tag:role=db"
    assert 'instances tagged role=db commands=["df -h", "du -sh /var"]' in ssm.description

    lam = await LambdaExecutor(clients).plan(
        "invoke", {"function": "recycle-worker", "payload": '{"worker": "w-3"}'}, 30
    )
    assert lam.target == "lambda:recycle-worker"
    assert 'payload={"worker":"w-3"}' in lam.description

    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
    elb = await ElbExecutor(clients).plan(
        "deregister-target", {"target_group_arn": arn, "target": "i-0abc12345678", "wait_s": 60}, 90
    )
    assert elb.target == "elb:web/i-0abc12345678"
    assert elb.description.endswith("then wait until deregistered (at most 60s)")
    assert clients._clients == {}  # no client was even built


@pytest.mark.parametrize(
    ("executor", "action", "params", "message"),
    [
        (EcsExecutor, "force-new-deployment", {"cluster": "prod"}, "missing parameter service"),
        (
            EcsExecutor,
            "force-new-deployment",
            {"cluster": "p", "service": "w", "replicas": 2},
            "unknown parameter replicas",
        ),
        (EcsExecutor, "scale", {"cluster": "p", "service": "w"}, "has no action 'scale'"),
        (EcsExecutor, "set-desired-count", {"cluster": "p", "service": "w", "count": "x"}, "count"),
        (SsmExecutor, "run-command", {"document": "D"}, "exactly one of instance_ids or tag"),
        (SsmExecutor, "run-command", {"document": "D", "instance_ids": "web-1"}, "web-1"),
        (SsmExecutor, "run-command", {"document": "D", "tag": "role"}, "Key=Value"),
        (LambdaExecutor, "invoke", {"function": "f", "payload": "{oops"}, "payload"),
        (ElbExecutor, "register-target", {"target_group_arn": "web", "target": "i-1"}, "ARN"),
    ],
)
async def test_bad_parameters_are_refused_at_plan_time_naming_them(
    executor: type[SsmExecutor], action: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(PermanentError, match=message):
        await executor(AwsClients(FAST)).plan(action, params, 60)


def test_build_executors_offers_shell_and_generator_only_when_embedded() -> None:
    settings = load_executor_settings()
    assert sorted(build_executors(settings, None, embedded=False)) == [
        "ecs",
        "elb",
        "http",
        "lambda",
        "ssm",
    ]
    assert "shell" in build_executors(settings, None, embedded=True)


# SSM -----------------------------------------------------------------------------------------


async def test_ssm_runs_a_document_on_instances_in_moto(moto: None) -> None:
    first, second = instance(), instance()
    executor = SsmExecutor(AwsClients(FAST))
    plan = await executor.plan(
        "run-command",
        {
            "document": "AWS-RunShellScript",
            "instance_ids": f"{first},{second}",
            "commands": "df -h",
        },
        120,
    )
    result = await executor.run(plan)
    assert result.ok, result.error
    assert f"{first} Success" in result.output and f"{second} Success" in result.output
    sent = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
    assert [(c["DocumentName"], c["Parameters"]) for c in sent] == [
        ("AWS-RunShellScript", {"commands": ["df -h"]})
    ]


async def test_ssm_command_that_fails_is_a_failed_step_with_its_stderr() -> None:
    # Stubber: moto's commands always succeed. The invocation is unknown right after
    # send_command (as in AWS), then in progress, then Failed.
    clients, stub = stubbed("ssm")
    stub.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND}},
        {
            "DocumentName": "AWS-RunShellScript",
            "InstanceIds": ["i-0123456789abcdef0"],
            "Parameters": {"commands": ["rm -rf /var/tmp/cache"]},
            "TimeoutSeconds": 60,
        },
    )
    stub.add_client_error(
        "get_command_invocation", "InvocationDoesNotExist", "no invocation yet", 400
    )
    stub.add_response("get_command_invocation", {"Status": "InProgress"})
    stub.add_response(
        "get_command_invocation",
        {
            "Status": "Failed",
            "ResponseCode": 1,
            "StandardErrorContent": "rm: cannot remove '/var/tmp/cache': Permission denied",
        },
    )
    executor = SsmExecutor(clients)
    plan = await executor.plan(
        "run-command",
        {
            "document": "AWS-RunShellScript",
            "instance_ids": ("i-0123456789abcdef0",),
            "commands": "rm -rf /var/tmp/cache",
        },
        60,
    )
    result = await executor.run(plan)
    stub.assert_no_pending_responses()
    assert not result.ok
    assert "i-0123456789abcdef0 Failed (exit 1): rm: cannot remove" in result.error


async def test_ssm_by_tag_sends_targets_and_reads_every_invocation() -> None:
    # Stubber: moto does not implement list_command_invocations
    clients, stub = stubbed("ssm")
    stub.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND}},
        {
            "DocumentName": "AWS-RunShellScript",
            "Targets": [{"Key": "tag:role", "Values": ["db"]}],
            "Parameters": {"commands": ["journalctl --vacuum-size=200M"]},
            "TimeoutSeconds": 90,
        },
    )
    stub.add_response(
        "list_commands", {"Commands": [{"CommandId": COMMAND, "Status": "InProgress"}]}
    )
    stub.add_response("list_commands", {"Commands": [{"CommandId": COMMAND, "Status": "Success"}]})
    stub.add_response(
        "list_command_invocations",
        {
            "CommandInvocations": [
                {
                    "InstanceId": "i-0aaaaaaaaaaaaaaa1",
                    "Status": "Success",
                    "CommandPlugins": [{"ResponseCode": 0, "Output": "Vacuuming done, freed 1.2G"}],
                },
                {"InstanceId": "i-0aaaaaaaaaaaaaaa2", "Status": "Success"},
            ]
        },
        {"CommandId": COMMAND, "Details": True},
    )
    executor = SsmExecutor(clients)
    plan = await executor.plan(
        "run-command",
        {
            "document": "AWS-RunShellScript",
            "tag": "role=db",
            "commands": "journalctl --vacuum-size=200M",
        },
        90,
    )
    result = await executor.run(plan)
    stub.assert_no_pending_responses()
    assert result.ok, result.error
    assert "Success on 2 instance(s)" in result.output and "freed 1.2G" in result.output


async def test_a_throttled_call_is_transient_and_access_denied_is_a_failed_step() -> None:
    clients, stub = stubbed("ssm")
    stub.add_client_error("send_command", "ThrottlingException", "Rate exceeded", 400)
    stub.add_client_error("send_command", "AccessDeniedException", "not authorized", 400)
    executor = SsmExecutor(clients)
    plan = await executor.plan(
        "run-command", {"document": "AWS-RunShellScript", "instance_ids": "i-0123456789abcdef0"}, 60
    )
    with pytest.raises(TransientError, match="ThrottlingException"):
        await executor.run(plan)
    denied = await executor.run(plan)
    assert not denied.ok and "AccessDeniedException: not authorized" in denied.error


# ECS -----------------------------------------------------------------------------------------


def ecs_service(desired: int = 2) -> Any:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    ecs.create_service(
        cluster="prod", serviceName="web", taskDefinition="web", desiredCount=desired
    )
    return ecs


async def test_ecs_in_moto_deploys_but_never_becomes_stable_so_the_bounded_wait_fails(
    moto: None,
) -> None:
    ecs = ecs_service()
    executor = EcsExecutor(AwsClients(FAST))
    plan = await executor.plan(
        "force-new-deployment", {"cluster": "prod", "service": "web", "wait_stable_s": 0.3}, 30
    )
    result = await executor.run(plan)
    assert not result.ok
    assert "not stable within 0.3s" in result.error and "rollout IN_PROGRESS" in result.error
    [service] = ecs.describe_services(cluster="prod", services=["web"])["services"]
    assert service["deployments"][0]["status"] == "PRIMARY"


async def test_ecs_set_desired_count_records_the_previous_count_for_a_rollback(
    moto: None,
) -> None:
    ecs = ecs_service(desired=2)
    executor = EcsExecutor(AwsClients(FAST))
    params: dict[str, ParamValue] = {
        "cluster": "prod",
        "service": "web",
        "count": 5,
        "wait_stable_s": 0,
    }
    result = await executor.run(await executor.plan("set-desired-count", params, 30))
    assert result.ok and "previous_count=2 count=5" in result.output
    assert (
        ecs.describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"] == 5
    )
    back: dict[str, ParamValue] = {**params, "count": 2}
    undone = await executor.run(await executor.plan("set-desired-count", back, 30))
    assert undone.ok and "previous_count=5 count=2" in undone.output
    assert (
        ecs.describe_services(cluster="prod", services=["web"])["services"][0]["desiredCount"] == 2
    )


async def test_ecs_on_a_missing_service_is_a_failed_step(moto: None) -> None:
    ecs_service()
    executor = EcsExecutor(AwsClients(FAST))
    plan = await executor.plan(
        "set-desired-count", {"cluster": "prod", "service": "api", "count": 1}, 30
    )
    result = await executor.run(plan)
    assert not result.ok and "no active service api in cluster prod" in result.error


def _described(deployments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"services": [{"serviceName": "web", "status": "ACTIVE", "deployments": deployments}]}


def _deployment(status: str, running: int, rollout: str, reason: str = "") -> dict[str, Any]:
    found = {"status": status, "desiredCount": 2, "runningCount": running, "rolloutState": rollout}
    return {**found, "rolloutStateReason": reason} if reason else found


async def test_ecs_waits_for_the_primary_rollout_to_complete() -> None:
    # Stubber: moto's ECS never becomes stable, so the success path is scripted here
    clients, stub = stubbed("ecs")
    stub.add_response(
        "update_service",
        {},
        {"cluster": "prod", "service": "web", "forceNewDeployment": True},
    )
    stub.add_response(
        "describe_services",
        _described([_deployment("PRIMARY", 0, "IN_PROGRESS"), _deployment("ACTIVE", 2, "")]),
    )
    stub.add_response(
        "describe_services",
        _described([_deployment("PRIMARY", 2, "IN_PROGRESS"), _deployment("ACTIVE", 1, "")]),
    )
    stub.add_response("describe_services", _described([_deployment("PRIMARY", 2, "COMPLETED")]))
    executor = EcsExecutor(clients)
    plan = await executor.plan("force-new-deployment", {"cluster": "prod", "service": "web"}, 60)
    result = await executor.run(plan)
    stub.assert_no_pending_responses()
    assert result.ok, result.error
    assert "stable after" in result.output and "2/2 running, 1 deployment(s)" in result.output


async def test_ecs_failed_rollout_fails_the_step_at_once() -> None:
    clients, stub = stubbed("ecs")
    stub.add_response("update_service", {})
    reason = "ECS deployment circuit breaker: tasks failed to start."
    stub.add_response(
        "describe_services",
        _described([_deployment("PRIMARY", 0, "FAILED", reason), _deployment("ACTIVE", 2, "")]),
    )
    executor = EcsExecutor(clients)
    plan = await executor.plan("force-new-deployment", {"cluster": "prod", "service": "web"}, 60)
    result = await executor.run(plan)
    assert not result.ok and "rollout FAILED" in result.error and reason in result.error


# Lambda --------------------------------------------------------------------------------------


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


async def test_lambda_invoke_in_moto_answers_the_function_result(moto: None) -> None:
    # moto without Docker echoes the payload back as the function's answer
    function()
    executor = LambdaExecutor(AwsClients(FAST))
    plan = await executor.plan("invoke", {"function": "recycle-worker", "payload": '{"w": 3}'}, 30)
    result = await executor.run(plan)
    assert result.ok, result.error
    assert result.output == 'status 200: {"w":3}'


async def test_lambda_unknown_function_is_a_failed_step() -> None:
    # Stubber: moto's invoke answers even for a function that does not exist
    clients, stub = stubbed("lambda")
    stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found: nope", 404)
    executor = LambdaExecutor(clients)
    result = await executor.run(await executor.plan("invoke", {"function": "nope"}, 30))
    assert not result.ok and "ResourceNotFoundException" in result.error


async def test_lambda_function_error_is_a_failed_step_with_the_error_payload() -> None:
    # Stubber: moto without Docker cannot run a function that raises
    clients, stub = stubbed("lambda")
    error = {"errorMessage": "worker w-3 is not stuck", "errorType": "ValueError"}
    stub.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": io.BytesIO(json.dumps(error).encode()),
        },
    )
    executor = LambdaExecutor(clients)
    result = await executor.run(await executor.plan("invoke", {"function": "recycle-worker"}, 30))
    assert not result.ok
    assert "function error (Unhandled)" in result.error and "is not stuck" in result.error


# ELB -----------------------------------------------------------------------------------------


async def test_elb_drains_a_target_and_puts_it_back(moto: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    host = instance()
    elb = boto3.client("elbv2", region_name=REGION)
    group = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)
    arn = group["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": host, "Port": 80}])
    executor = ElbExecutor(AwsClients(FAST))
    params = {"target_group_arn": arn, "target": host, "port": 80, "wait_s": 5}

    drained = await executor.run(await executor.plan("deregister-target", params, 30))
    assert drained.ok and "drained" in drained.output, drained.error
    assert elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []

    back = await executor.run(await executor.plan("register-target", params, 30))
    assert back.ok and "in service" in back.output, back.error
    [health] = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert health["Target"]["Id"] == host


# through a moto server on loopback -----------------------------------------------------------


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    # the server's Lambda runs without Docker too (it then echoes the payload)
    httpx.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=5)
    try:
        yield url
    finally:
        server.stop()


async def test_executors_reach_aws_through_aws_endpoint_url(moto_server: str) -> None:
    first = instance()
    function("drain-queue")
    executors = build_executors(load_executor_settings(aws_poll_interval="10ms"), None, False)

    ssm = executors["ssm"]
    plan = await ssm.plan(
        "run-command", {"document": "AWS-RunShellScript", "instance_ids": first}, 60
    )
    ran = await ssm.run(plan)
    assert ran.ok and f"{first} Success" in ran.output, ran.error

    lam = executors["lambda"]
    invoked = await lam.run(await lam.plan("invoke", {"function": "drain-queue"}, 30))
    assert invoked.ok and invoked.output == "status 200: {}", invoked.error

    ecs_service(desired=1)
    ecs = executors["ecs"]
    scaled = await ecs.run(
        await ecs.plan(
            "set-desired-count",
            {"cluster": "prod", "service": "web", "count": 3, "wait_stable_s": 0},
            30,
        )
    )
    assert scaled.ok and "previous_count=1 count=3" in scaled.output, scaled.error
    # what the server holds is what the executors did
    commands = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
    assert [c["InstanceIds"] for c in commands] == [[first]]


async def test_an_aws_call_that_hangs_is_cut_at_the_step_timeout_as_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a loopback endpoint that accepts connections and never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    clients = AwsClients(AwsSettings(region=REGION, poll_s=0.01, read_timeout_s=1))
    executor = EcsExecutor(clients)
    plan = await executor.plan("force-new-deployment", {"cluster": "prod", "service": "web"}, 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(TransientError, match=r"did not finish within 0\.5s"):
            await executor.run(plan)
    finally:
        silent.close()
    assert time.monotonic() - started < 2
