"""infrastructure/deploy.sh end to end against moto on 127.0.0.1 (``AWS_ENDPOINT_URL``).

The script runs as users run it, with the AWS CLI; only the image build and push is replaced,
through its one seam (``DEPLOY_IMAGE_BUILDER``), by a script that records the call and puts an
image manifest into moto's ECR. moto's ECS services never become stable, so the first run ends
with the "did not become stable" error after a bounded wait, which the test asserts too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

# moto skips the resource types it lacks (auto scaling) with a warning; cfn-lint checks them.
# A proof run (a moto server and CloudFormation change sets, about a minute): `make proof`.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
    pytest.mark.deploy,
]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infrastructure" / "deploy.sh"
ACCOUNT = "123456789012"  # moto's account
REGION = "eu-west-1"
SECRET_VALUES = ("xoxb-secret-bot-token-123", "slack-signing-secret-456", "u8XfB1aTq9")

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "b5" * 32,
        },
        "layers": [],
    }
)
# stands in for build + push: records the image and puts a manifest into moto's ECR
BUILDER = f"""#!/usr/bin/env bash
set -euo pipefail
echo "$1" >>"$BUILDER_LOG"
repo="${{1#*/}}"; tag="${{repo#*:}}"; repo="${{repo%%:*}}"
aws --region "$AWS_DEFAULT_REGION" ecr put-image --repository-name "$repo" --image-tag "$tag" \\
  --image-manifest '{MANIFEST}' >/dev/null
"""


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(url: str, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def network(moto_url: str) -> dict[str, str]:
    ec2 = _client(moto_url, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("abab")
    ]
    acm = _client(moto_url, "acm")
    certificate = acm.request_certificate(DomainName="bot.example.com")["CertificateArn"]
    return {
        "STACK_VpcId": vpc,
        "STACK_SubnetA": subnets[0],
        "STACK_SubnetB": subnets[1],
        "STACK_PublicSubnetA": subnets[2],
        "STACK_PublicSubnetB": subnets[3],
        "STACK_CertificateArn": certificate,
    }


@pytest.fixture
def env_file(tmp_path: Path, network: dict[str, str]) -> Path:
    lines = [f"{k}={v}" for k, v in network.items()]
    lines += [
        f"SLACK_BOT_TOKEN={SECRET_VALUES[0]}",
        f"SLACK_SIGNING_SECRET='{SECRET_VALUES[1]}'",
        f"BOT_DATABASE_URL=postgresql+psycopg://bot:{SECRET_VALUES[2]}@db.internal:5432/bot",
        "SLACK_DEFAULT_CHANNEL=C0123ABCD",
        "# comments and blank lines are fine",
        "",
    ]
    path = tmp_path / "deploy.env"
    path.write_text("\n".join(lines))
    return path


def _deploy(
    moto_url: str, tmp_path: Path, *args: str, path: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    builder = tmp_path / "builder.sh"
    builder.write_text(BUILDER)
    builder.chmod(0o755)
    venv_bin = str(Path(sys.executable).parent)
    environment = {
        "PATH": path if path is not None else f"{venv_bin}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "DEPLOY_IMAGE_BUILDER": str(builder),
        "BUILDER_LOG": str(tmp_path / "builder.log"),
        "DEPLOY_POLL_SECONDS": "0.2",
        "DEPLOY_STABLE_TIMEOUT": "2",
        **env,
    }
    return subprocess.run(
        ["bash", str(DEPLOY), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=tmp_path,
        check=False,
    )


def _state(moto_url: str) -> dict[str, object]:
    """Everything deploy.sh could change, as moto holds it."""
    cfn = _client(moto_url, "cloudformation")
    stacks = cfn.list_stacks()["StackSummaries"]
    return {
        "repositories": sorted(
            (r["repositoryName"], r["createdAt"])
            for r in _client(moto_url, "ecr").describe_repositories()["repositories"]
        ),
        "secrets": sorted(
            (s["Name"], str(s.get("LastChangedDate")))
            for s in _client(moto_url, "secretsmanager").list_secrets()["SecretList"]
        ),
        "stacks": sorted((s["StackName"], s["StackStatus"]) for s in stacks),
        "change_sets": sorted(
            c["ChangeSetName"]
            for s in stacks
            if s["StackStatus"] != "DELETE_COMPLETE"
            for c in cfn.list_change_sets(StackName=s["StackName"])["Summaries"]
        ),
        "services": sorted(
            arn
            for cluster in _client(moto_url, "ecs").list_clusters()["clusterArns"]
            for arn in _client(moto_url, "ecs").list_services(cluster=cluster)["serviceArns"]
        ),
    }


def _never_shows_a_secret(result: subprocess.CompletedProcess[str]) -> None:
    for value in SECRET_VALUES:
        assert value not in result.stdout + result.stderr


def test_deploys_then_a_second_run_changes_nothing(
    moto_url: str, tmp_path: Path, env_file: Path
) -> None:
    args = ("-e", "prod", "-a", ACCOUNT, "-r", REGION, "--image-tag", "v1", "--env-file")

    first = _deploy(moto_url, tmp_path, *args, str(env_file), "--yes")
    _never_shows_a_secret(first)
    # moto's ECS never reports the tasks running: the bounded wait ends with a clear error
    assert first.returncode == 1, first.stdout + first.stderr
    assert "did not become stable within 2s" in first.stderr, first.stdout + first.stderr
    assert "create ECR repository incident-bot" in first.stdout, first.stdout
    assert "create secret incident-bot/prod/app" in first.stdout
    assert "stack incident-bot-prod: CREATE_COMPLETE" in first.stdout
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/incident-bot:v1"
    assert (tmp_path / "builder.log").read_text().split() == [image]

    secrets = _client(moto_url, "secretsmanager")
    app = secrets.get_secret_value(SecretId="incident-bot/prod/app")["SecretString"]
    assert SECRET_VALUES[0] in app and SECRET_VALUES[1] in app and '"SLACK_APP_TOKEN": ""' in app
    ecs = _client(moto_url, "ecs")
    service = ecs.describe_services(cluster="incident-bot-prod", services=["incident-bot-prod"])[
        "services"
    ][0]
    assert service["desiredCount"] == 2
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    container = definition["taskDefinition"]["containerDefinitions"][0]
    assert container["image"] == image
    plain = {e["name"]: e["value"] for e in container["environment"]}
    assert plain["SLACK_DEFAULT_CHANNEL"] == "C0123ABCD"
    assert {s["name"] for s in container["secrets"]} >= {"BOT_DATABASE_URL", "SLACK_BOT_TOKEN"}

    before = _state(moto_url)
    second = _deploy(moto_url, tmp_path, *args, str(env_file), "--yes")
    _never_shows_a_secret(second)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "no changes: stack incident-bot-prod is already up to date" in second.stdout
    assert "secret incident-bot/prod/app unchanged" in second.stdout
    assert f"image {image} is already in ECR" in second.stdout
    assert "The bot is at https://" in second.stdout, second.stdout
    assert "/slack/events" in second.stdout
    assert (tmp_path / "builder.log").read_text().split() == [image]
    assert _state(moto_url) == before

    # a new credential value: the secret is updated and the tasks restarted to read it
    env_file.write_text(env_file.read_text().replace(SECRET_VALUES[0], "xoxb-rotated-789"))
    third = _deploy(moto_url, tmp_path, *args, str(env_file), "--yes", DEPLOY_STABLE_TIMEOUT="0")
    assert "update secret incident-bot/prod/app" in third.stdout
    assert "restarting the tasks of service incident-bot-prod" in third.stdout
    rotated = secrets.get_secret_value(SecretId="incident-bot/prod/app")["SecretString"]
    assert "xoxb-rotated-789" in rotated and SECRET_VALUES[0] not in rotated
    # the console token deploy.sh made on the first run is kept
    assert json.loads(rotated)["BOT_CONSOLE_TOKEN"] == json.loads(app)["BOT_CONSOLE_TOKEN"]
    assert "xoxb-rotated-789" not in third.stdout + third.stderr


def test_dry_run_prints_every_action_and_changes_nothing(
    moto_url: str, tmp_path: Path, env_file: Path
) -> None:
    before = _state(moto_url)
    result = _deploy(
        moto_url, tmp_path, "-e", "staging", "-a", ACCOUNT, "-r", REGION, "--image-tag", "v2",
        "--env-file", str(env_file), "--dry-run",
    )  # fmt: skip
    _never_shows_a_secret(result)
    assert result.returncode == 0, result.stdout + result.stderr
    for action in (
        "would build and push",
        "would create secret incident-bot/staging/app",
        "would create secret incident-bot/staging/database-url-external",
        "would create change set",
    ):
        assert action in result.stdout
    assert not (tmp_path / "builder.log").exists()
    assert _state(moto_url) == before


def test_refuses_credentials_of_another_account(
    moto_url: str, tmp_path: Path, env_file: Path
) -> None:
    before = _state(moto_url)
    result = _deploy(
        moto_url, tmp_path, "-e", "prod", "-a", "999999999999", "-r", REGION,
        "--env-file", str(env_file), "--yes",
    )  # fmt: skip
    assert result.returncode == 1
    assert f"the credentials belong to account {ACCOUNT}, not 999999999999" in result.stderr
    assert _state(moto_url) == before


class _ExpiredSts(BaseHTTPRequestHandler):
    """STS answering every call as AWS does once the session token has expired."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            b"<Type>Sender</Type><Code>ExpiredToken</Code>"
            b"<Message>The security token included in the request is expired</Message>"
            b"</Error><RequestId>4f1c</RequestId></ErrorResponse>"
        )
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_says_when_the_credentials_have_expired(tmp_path: Path, env_file: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ExpiredSts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = _deploy(
            f"http://127.0.0.1:{server.server_port}", tmp_path, "-e", "prod", "-a", ACCOUNT,
            "-r", REGION, "--env-file", str(env_file), AWS_SESSION_TOKEN="old",
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert "the AWS credentials have expired: sign in again" in result.stderr


def test_says_when_the_aws_cli_is_missing(tmp_path: Path, env_file: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "python3", "git", "mktemp", "date"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = _deploy(
        "http://127.0.0.1:9", tmp_path, "-e", "prod", "-a", ACCOUNT, "-r", REGION,
        "--env-file", str(env_file), path=str(bin_dir),
    )  # fmt: skip
    assert result.returncode == 1
    assert "the AWS CLI (aws) is not installed or not on PATH" in result.stderr


def test_names_an_unknown_setting_in_the_env_file(
    moto_url: str, tmp_path: Path, env_file: Path
) -> None:
    env_file.write_text(env_file.read_text() + "\nSLACK_BOT_TOKN=oops\n")
    result = _deploy(
        moto_url, tmp_path, "-e", "prod", "-a", ACCOUNT, "-r", REGION,
        "--env-file", str(env_file), "--yes",
    )  # fmt: skip
    assert result.returncode == 1
    assert "SLACK_BOT_TOKN: not a setting deploy.sh knows" in result.stderr
    assert "oops" not in result.stderr


def test_without_a_database_url_the_stack_makes_rds_postgresql(
    moto_url: str, tmp_path: Path, env_file: Path
) -> None:
    lines = env_file.read_text().splitlines()
    env_file.write_text("\n".join(x for x in lines if not x.startswith("BOT_DATABASE_URL")))
    result = _deploy(
        moto_url, tmp_path, "-e", "rds", "-a", ACCOUNT, "-r", REGION, "--image-tag", "v1",
        "--env-file", str(env_file), "--yes", DEPLOY_STABLE_TIMEOUT="0",
    )  # fmt: skip
    assert "database: an RDS PostgreSQL instance made by the stack" in result.stdout
    assert "stack incident-bot-rds: CREATE_COMPLETE" in result.stdout, result.stderr
    databases = _client(moto_url, "rds").describe_db_instances()["DBInstances"]
    assert [(d["Engine"], d["DBName"]) for d in databases] == [("postgres", "bot")]
    ecs = _client(moto_url, "ecs")
    service = ecs.describe_services(cluster="incident-bot-rds", services=["incident-bot-rds"])
    arn = service["services"][0]["taskDefinition"]
    container = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
        "containerDefinitions"
    ][0]
    # moto's CloudFormation does not create AWS::SecretsManager::Secret, so the DSN secret the
    # stack makes for RDS cannot be followed here; the variable is still taken from a secret
    assert "BOT_DATABASE_URL" in {s["name"] for s in container["secrets"]}
    assert "BOT_DATABASE_URL" not in {e["name"] for e in container["environment"]}


def test_a_refused_change_set_says_why(moto_url: str, tmp_path: Path, env_file: Path) -> None:
    lines = env_file.read_text().splitlines()
    env_file.write_text("\n".join(x for x in lines if not x.startswith("STACK_CertificateArn")))
    result = _deploy(
        moto_url, tmp_path, "-e", "broken", "-a", ACCOUNT, "-r", REGION, "--image-tag", "v1",
        "--env-file", str(env_file), "--yes",
    )  # fmt: skip
    assert result.returncode == 1
    # CloudFormation refuses it when the change set is made, moto when it is executed: either
    # way the error names the change set and CloudFormation's reason
    assert result.stderr.startswith("deploy: error: "), result.stderr
    assert "change set" in result.stderr and "CertificateArn" in result.stderr
