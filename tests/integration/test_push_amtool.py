"""amtool (Alertmanager's own CLI) against the bot on loopback: add an alert, list it."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select

from bot.server import create_app
from bot.settings import load_settings
from bot.store.repo import INCIDENTS
from bot.wiring import Runtime
from tests.push_env import GRAFANA_PASSWORD, push_settings

AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool is not installed (Debian package prometheus-alertmanager: make bench-deps)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def amtool(url: str, *args: str) -> tuple[int, str, str]:
    assert AMTOOL is not None
    proc = await asyncio.create_subprocess_exec(
        AMTOOL,
        f"--alertmanager.url={url}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_amtool_adds_and_lists_alerts(tmp_path: Path) -> None:
    port = free_port()
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        http_port=port,
        push=push_settings(),
    )
    runtime = Runtime(config)
    await runtime.connect(attempts=1)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        url = f"http://grafana:{GRAFANA_PASSWORD}@127.0.0.1:{port}"
        code, out, err = await amtool(
            url,
            "alert",
            "add",
            "alertname=AmtoolCheck",
            "service=checkout",
            "severity=critical",
            "cluster=eu-1",
            "--annotation=summary=added by amtool",
        )
        assert code == 0, err
        code, out, err = await amtool(url, "alert", "query", "-o", "json", "alertname=AmtoolCheck")
        assert code == 0, err
        (listed,) = json.loads(out)
        assert listed["labels"]["service"] == "checkout"
        assert listed["annotations"] == {"summary": "added by amtool"}
        with runtime.engine.connect() as conn:
            row = conn.execute(select(INCIDENTS)).one()
        assert row.group_key == "push-checkout|alertname=AmtoolCheck,cluster=eu-1"
        assert row.title == "AmtoolCheck: added by amtool"
        wrong = f"http://grafana:nope@127.0.0.1:{port}"
        code, out, err = await amtool(wrong, "alert", "add", "alertname=Refused")
        assert code != 0
    finally:
        server.should_exit = True
        await serving
