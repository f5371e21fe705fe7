"""The fakes' fault switch: each kind of fault, on each fake, for a while; then the fake answers
as it did before."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fakes.bedrock import FakeBedrock
from tests.fakes.entra import ENTRA_HOST, FakeEntra
from tests.fakes.faults import Fault, FaultSwitch
from tests.fakes.pagerduty import FakePagerDuty, make_tls
from tests.fakes.slack import FakeSlack
from tests.fakes.splunk import FakeSplunk
from tests.fakes.teams import APP_ID, PASSWORD, TENANT_ID, running_connector

Target = tuple[FaultSwitch, str, httpx.Client]


@contextmanager
def target(name: str, folder: Path) -> Iterator[Target]:
    """(switch, URL of one request, client) for one fake."""
    if name == "splunk":
        with FakeSplunk() as fake, httpx.Client() as client:
            yield fake.faults, f"http://127.0.0.1:{fake.port}/services/server/info", client
    elif name == "pagerduty":
        tls = make_tls(folder)
        with FakePagerDuty(tls) as fake, httpx.Client(verify=tls.client) as client:
            yield fake.faults, f"{fake.url}/v2/enqueue", client
    elif name == "bedrock":
        with FakeBedrock() as fake, httpx.Client() as client:
            yield fake.faults, f"{fake.url}/model/m/converse", client
    elif name == "slack":
        slack = FakeSlack().start_in_thread()
        try:
            with httpx.Client() as client:
                yield slack.faults, f"{slack.api_url}auth.test", client
        finally:
            slack.stop_thread()
    elif name == "entra":  # the token endpoint, through the login fake's proxy, over TLS
        with FakeEntra(folder, APP_ID, PASSWORD, TENANT_ID) as entra:
            trust = ssl.create_default_context(cafile=str(entra.ca_file))
            with httpx.Client(proxy=entra.proxy_url, verify=trust) as client:
                url = f"https://{ENTRA_HOST}/{TENANT_ID}/oauth2/v2.0/token"
                yield entra.faults, url, client
    else:
        with running_connector(require_token=False) as connector, httpx.Client() as client:
            yield connector.faults, f"{connector.url}v3/conversations", client


FAKES = ["splunk", "pagerduty", "bedrock", "slack", "teams", "entra"]


def post(client: httpx.Client, url: str, timeout: float = 5.0) -> httpx.Response:
    return client.post(url, json={}, timeout=timeout)


@pytest.mark.parametrize("name", FAKES)
def test_each_fault_for_a_while_then_the_fake_recovers(name: str, tmp_path: Path) -> None:
    with target(name, tmp_path) as (switch, url, client):
        normal = post(client, url)
        assert "fault" not in normal.text

        switch.set(Fault.ERROR, seconds=30)
        assert post(client, url).status_code == 503

        switch.set(Fault.THROTTLE, seconds=30, retry_after=7)
        answer = post(client, url)
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"

        switch.set(Fault.REFUSE, seconds=30)
        with pytest.raises(httpx.TransportError):
            post(client, url)

        switch.set(Fault.HANG, seconds=1.0)
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            post(client, url, timeout=0.3)
        assert time.monotonic() - started < 0.9

        time.sleep(switch.remaining() + 0.05)  # the hang ends by itself
        after = post(client, url)
        assert after.status_code == normal.status_code and "fault" not in after.text
        assert switch.served == {
            Fault.ERROR: 1,
            Fault.THROTTLE: 1,
            Fault.REFUSE: 1,
            Fault.HANG: 1,
        }
        assert [w.kind for w in switch.windows] == [
            Fault.ERROR,
            Fault.THROTTLE,
            Fault.REFUSE,
            Fault.HANG,
        ]


def test_a_fault_needs_a_positive_duration() -> None:
    with pytest.raises(ValueError, match="duration must be positive"):
        FaultSwitch().set(Fault.ERROR, seconds=0)


def test_clear_ends_the_fault_now() -> None:
    switch = FaultSwitch()
    switch.set("429", seconds=60)
    assert switch.active() is Fault.THROTTLE
    switch.clear()
    assert switch.active() is None and switch.windows[-1].end <= time.monotonic()
