"""The whole chain with nobody pressing anything: a Splunk hit (a loopback Splunk speaking its REST
API, through splunk-sdk) -> an incident -> its analysis -> an automatic run whose step invokes a
Lambda function (moto, through boto3) -> verification re-runs the rule in Splunk -> the incident
resolves -> GET /api/v1/audit/incident/{id} shows every link of it, in order and intact."""

from __future__ import annotations

import io
import random
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from httpx import ASGITransport, AsyncClient
from moto import mock_aws

from bot.server import create_app
from bot.store.runtime_config import CategoryPolicy, save_category
from integrations.local.scenarios import SCENARIOS
from tests.fakes.bedrock import aws_test_env
from tests.fakes.splunk import FakeSplunk
from tests.remediation_env import embedded

TOKEN = "eyJrIjoiZmFrZS1zcGx1bmstdG9rZW4tZm9yLWNoYWluIn0"
RECYCLE = {
    "id": "recycle-checkout",
    "title": "Recycle checkout's workers",
    "category": "application",
    "risk": "low",
    "auto": True,
    "matches": {"rules": ["web-5xx-burst"]},
    "target": "service:{service}",
    "steps": [
        {
            "name": "recycle workers",
            "executor": "lambda",
            "action": "invoke",
            "args": {"function": "recycle-worker", "payload": '{"service": "{service}"}'},
            "timeout": "30s",
            "reversible": True,
        }
    ],
    "verify": {"wait": "1m"},
}


def function() -> None:
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="lambda-role", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    boto3.client("lambda", region_name="us-east-1").create_function(
        FunctionName="recycle-worker",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
    )


async def test_a_splunk_hit_ends_as_an_auto_resolved_verified_incident_on_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_test_env(monkeypatch, tmp_path)
    with FakeSplunk(token=TOKEN) as splunk, mock_aws(config={"lambda": {"use_docker": False}}):
        function()
        splunk.add_events(SCENARIOS["web-5xx-burst"].events(datetime.now(UTC), random.Random(3)))
        env_vars = {
            "SPLUNK_HOST": splunk.host,
            "SPLUNK_PORT": str(splunk.port),
            "SPLUNK_SCHEME": "http",
            "SPLUNK_TOKEN": TOKEN,
        }
        async with embedded(tmp_path, [RECYCLE], owner="console:olivia", env=env_vars) as env:
            runtime = env.runtime
            assert runtime.settings.search_backend == "splunk" and not runtime.embedded
            save_category(
                runtime.engine,
                CategoryPolicy("application", auto=True),
                "console:root",
                "console",
                env.clock.now(),
            )
            summary = await runtime.runner.run("web-5xx-burst")
            (incident,) = summary.result.created
            await env.analyse(incident)  # the analysis is done: the run starts by itself
            (run,) = env.runs()
            assert run.mode == "auto" and run.playbook_id == "recycle-checkout"
            steps = env.steps(run.id)
            assert steps[0].status == "succeeded"
            assert steps[0].output == 'status 200: {"service":"checkout"}'
            searches = len(splunk.exports)
            await env.verify(70)
            assert len(splunk.exports) > searches  # verification searched Splunk again
            assert env.state(incident) == "resolved"

            app = create_app(runtime)
            runtime.db.ready = True
            async with AsyncClient(
                transport=ASGITransport(app=app), base_url="http://127.0.0.1"
            ) as client:
                answer = await client.get(f"/api/v1/audit/incident/INC-{incident}")
            assert answer.status_code == 200, answer.text
            chain = answer.json()
            assert chain["intact"]
            actions = [item["action"] for item in chain["items"]]
            assert actions[0] == "detect" and "rca" in actions[1]
            for expected in (
                "playbook_started",
                "playbook_step_started",
                "playbook_step_finished",
                "playbook_verifying",
                "auto_resolve",
                "playbook_verified",
                "playbook_notified",
            ):
                assert expected in actions, actions
            started = next(i for i in chain["items"] if i["action"] == "playbook_started")
            assert started["actor"] == "bot" and started["data"]["decision"] == "run"
            codes = {code for code, passed, _ in started["data"]["checks"] if passed}
            assert {"kill_switch", "auto", "confidence", "reversible", "risk"} <= codes
            resolved = next(i for i in chain["items"] if i["action"] == "auto_resolve")
            assert resolved["actor"] == "playbook:recycle-checkout"
            assert "auto-resolved by recycle-checkout, verified at" in resolved["detail"]
            assert [d.channel for d in env.directs()] == ["olivia"]


async def test_a_verification_splunk_cannot_answer_is_tried_again_until_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_test_env(monkeypatch, tmp_path)
    with FakeSplunk(token=TOKEN) as splunk, mock_aws(config={"lambda": {"use_docker": False}}):
        function()
        splunk.add_events(SCENARIOS["web-5xx-burst"].events(datetime.now(UTC), random.Random(3)))
        env_vars = {
            "SPLUNK_HOST": splunk.host,
            "SPLUNK_PORT": str(splunk.port),
            "SPLUNK_SCHEME": "http",
            "SPLUNK_TOKEN": TOKEN,
        }
        async with embedded(tmp_path, [RECYCLE], env=env_vars) as env:
            summary = await env.runtime.runner.run("web-5xx-burst")
            (incident,) = summary.result.created
            run = await env.press(incident, playbook_id="recycle-checkout")
            await env.settle()
            splunk.fail_next(400, count=100)
            assert await env.verify(70) == 1
            assert env.run_row(run.id).status == "verifying"  # tried again at the next tick
            assert await env.verify(5) == 1
            assert env.run_row(run.id).status == "verifying"
            await env.verify(600)  # past verify.timeout (10m after it was due)
            row = env.run_row(run.id)
            assert row.status == "failed" and "could not verify" in row.detail
            assert env.state(incident) == "open"
