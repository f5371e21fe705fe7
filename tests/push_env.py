"""A bot with push ingest on, for the push tests: two senders and a route for checkout."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bot.server import create_app
from bot.settings import load_settings
from bot.wiring import Runtime
from detectors.model import Rule
from tests.conftest import FakeClock

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager"
PROMETHEUS_TOKEN = "prom-push-token-7f3c0d9a2b"
GRAFANA_PASSWORD = "grafana-push-password-51e8"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def bearer(token: str = PROMETHEUS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str = "grafana", password: str = GRAFANA_PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def push_settings(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "senders": [
            {"name": "prometheus", "token_sha256": sha256(PROMETHEUS_TOKEN)},
            {"name": "grafana", "username": "grafana", "password_sha256": sha256(GRAFANA_PASSWORD)},
        ],
        "routes": [
            {
                "name": "checkout",
                "matchers": ['service="checkout"', 'severity=~"critical|page"'],
                "group_by": ["alertname", "cluster"],
                "category": "application",
            }
        ],
        "splunk_rules": [
            {
                "search_name": "Web - 5xx errors",
                "id": "splunk-web-5xx",
                "severity": "high",
                "group_by": ["service", "host"],
            }
        ],
    }
    settings.update(overrides)
    return settings


async def push_client(
    database_url: str,
    tmp_path: Path,
    clock: FakeClock,
    rules: list[Rule] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    config = load_settings(
        database_url=database_url,
        local_events_path=tmp_path / "events.db",
        generator=False,
        push=settings.pop("push", None) or push_settings(),
        **settings,
    )
    runtime = Runtime(config, clock=clock, rules=rules)
    await runtime.connect(attempts=1)
    transport = httpx.ASGITransport(app=create_app(runtime))

    async def applied(response: httpx.Response) -> None:
        """The bot answers a push once it is journaled and applies it just after: the tests
        look at incidents and cards once it is applied, as a user watching them would."""
        if response.request.method == "POST" and runtime.push.receiver is not None:
            assert await runtime.push.receiver.settled(within=30.0)

    async with httpx.AsyncClient(
        transport=transport, base_url="http://bot.test", event_hooks={"response": [applied]}
    ) as client:
        yield client, runtime
    if runtime.push.receiver is not None:
        await runtime.push.receiver.aclose()
    runtime.engine.dispose()
    if runtime.event_store is not None:
        runtime.event_store.close()
