"""What a starting bot imports: the large optional libraries only when its configuration uses them.

Each case starts a fresh interpreter that does what ``run_bot.py run`` does up to serving:
imports the CLI, builds the :class:`~bot.wiring.Runtime` and the app, starts the runtime and
waits until the database is migrated and ``/ready`` has answered; then it lists the top-level
modules loaded. Two configurations:

* ``peer``: as ``bench/peer.py`` starts the bot next to Alertmanager (push ingest with one
  sender, Slack, ``BOT_RCA=off``, no generator, no shipped rules);
* ``default``: the embedded defaults (no environment but where the files go).

Neither uses similar-incident search yet (no incident resolved), an AWS feature, Teams, Splunk
or PagerDuty, so none of their libraries may be loaded: numpy, scipy and scikit-learn alone are
about 60 MiB of the process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

SCRIPT = """
import asyncio, json, sys

from bot.cli import main  # noqa: F401 - what run_bot.py imports
from bot.settings import load_settings


async def start_and_stop(runtime, app):
    import httpx

    await runtime.start()
    try:
        for _ in range(400):
            if runtime.db.ready:
                break
            await asyncio.sleep(0.025)
        assert runtime.db.ready, runtime.db.reason
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            await client.get("/ready")
    finally:
        await runtime.stop()


def run():
    import uvicorn  # noqa: F401 - the server, as `run` imports it

    from bot.server import create_app
    from bot.wiring import Runtime

    runtime = Runtime(load_settings())
    asyncio.run(start_and_stop(runtime, create_app(runtime)))


run()
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""

#: not loaded by either configuration: what loads each, and when
ABSENT = {
    "sklearn": "similar-incident search, at the first resolved incident",
    "scipy": "similar-incident search, at the first resolved incident",
    "numpy": "similar-incident search, at the first resolved incident",
    "boto3": "BOT_RCA=bedrock, or a playbook's first AWS step",
    "botocore": "BOT_RCA=bedrock, or a playbook's first AWS step",
    "msal": "Teams (TEAMS_ENABLED)",
    "microsoft_agents": "Teams (TEAMS_ENABLED)",
    "pagerduty": "PagerDuty (PAGERDUTY_ROUTING_KEY…)",
    "splunklib": "BOT_SEARCH_BACKEND=splunk",
    "matplotlib": "the first chart drawn",
}
#: not loaded by the embedded defaults either (no Slack, the heuristic RCA)
ABSENT_BY_DEFAULT = {
    "slack_sdk": "Slack (SLACK_BOT_TOKEN…)",
    "slack_bolt": "Slack (SLACK_BOT_TOKEN…)",
}


def _environment(folder: Path, config: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "SPLUNK_", "SLACK_", "PAGERDUTY_", "TEAMS_", "AWS_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        BOT_DATABASE_URL=f"sqlite:///{folder / 'bot.db'}",
        BOT_LOCAL_EVENTS_PATH=str(folder / "events.db"),
        BOT_HTTP_HOST="127.0.0.1",
        BOT_LOG_LEVEL="ERROR",
    )
    if config == "peer":  # bench/peer.py's start_bot()
        token = "start-imports-token-0f9e8d7c6b5a"
        digest = hashlib.sha256(token.encode()).hexdigest()
        settings = folder / "settings.yml"
        settings.write_text(
            "push:\n"
            "  senders:\n"
            f"    - {{name: bench, token_sha256: {digest}, rate: 100000, burst: 100000}}\n"
        )
        env.update(
            BOT_SETTINGS_FILE=str(settings),
            BOT_GENERATOR="false",
            BOT_SHIPPED_RULES="false",
            BOT_RCA="off",
            BOT_OUTBOX_RATE_LIMITS=json.dumps({"slack": {"rate": 100000, "burst": 100000}}),
            SLACK_BOT_TOKEN="xoxb-start-imports",
            SLACK_SIGNING_SECRET="start-imports-signing-secret",
            SLACK_API_URL="http://127.0.0.1:9/api/",  # nothing listens: start-up does not wait
            SLACK_DEFAULT_CHANNEL="C0START",
        )
    return env


CONFIGS = ("peer", "default")


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Both configurations' runs, side by side (each takes a few seconds): exit code, output."""
    runs = {}
    for config in CONFIGS:
        folder = tmp_path_factory.mktemp(config)
        runs[config] = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            env=_environment(folder, config),
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    found = {}
    for config, process in runs.items():
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        found[config] = (process.returncode, out, err)
    return found


@pytest.mark.parametrize("config", CONFIGS)
def test_start_loads_only_the_libraries_the_configuration_uses(
    started: dict[str, tuple[int, str, str]], config: str
) -> None:
    returncode, out, err = started[config]
    assert returncode == 0, err
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "bot" in loaded and "alembic" in loaded  # it did start and migrate
    if config == "peer":
        assert "slack_sdk" in loaded  # Slack is configured: its client is built
    absent = ABSENT if config == "peer" else {**ABSENT, **ABSENT_BY_DEFAULT}
    unexpected = {name: why for name, why in absent.items() if name in loaded}
    assert not unexpected, f"imported at start, though only needed by: {unexpected}"
