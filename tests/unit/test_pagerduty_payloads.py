"""Webhooks v3: signatures, the recorded payload shapes, and what each event asks for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.domain.incident import CommandKind
from integrations.pagerduty.webhooks import actor_of, decide, parse, sign, verify_signature
from tests.fakes.pagerduty import FakeIncident, signature, webhook_body

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pagerduty"
BODY = (FIXTURES / "webhook_incident_acknowledged.json").read_bytes()


def fixture(name: str) -> bytes:
    return (FIXTURES / f"webhook_{name}.json").read_bytes()


def test_a_signature_verifies_under_any_configured_secret() -> None:
    header = sign(BODY, "new-secret")
    assert verify_signature(BODY, header, ["new-secret"])
    assert verify_signature(BODY, header, ["old-secret", "new-secret"])  # we rotate
    both = signature(BODY, "old-secret", "new-secret")  # PagerDuty rotates: both sent
    assert both.count("v1=") == 2 and verify_signature(BODY, both, ["old-secret"])
    assert verify_signature(BODY, both.replace(",", ", "), ["new-secret"])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=",
        "v0=" + sign(BODY, "s")[3:],
        sign(BODY, "other"),
        sign(BODY + b" ", "s"),
        sign(BODY, "s")[:-2],
        "v1=\u00e9\u00e9",
    ],
)
def test_missing_forged_or_malformed_signatures_fail(header: str | None) -> None:
    assert not verify_signature(BODY, header, ["s"])


def test_no_secret_verifies_nothing() -> None:
    assert not verify_signature(BODY, sign(BODY, ""), [])


def test_recorded_payloads_map_to_commands() -> None:
    ack = parse(fixture("incident_acknowledged"))
    assert ack.id == "01DEN9WJ0ZAJQZ7W0D4B8Y7Q3T" and actor_of(ack) == "pagerduty:PLH1HKV"
    decision = decide(ack)
    assert decision.kind is CommandKind.ACKNOWLEDGE
    assert decision.incident_key == "incident-bot/INC-7/3f1c2a9b8d7e6f50"
    assert decision.pagerduty_id == "Q2BNJ8QY3V0M5L"

    reassigned = decide(parse(fixture("incident_reassigned")))
    assert (reassigned.kind, reassigned.user) == (CommandKind.ASSIGN, "Bob Example")

    note = decide(parse(fixture("incident_annotated")))
    assert note.kind is CommandKind.COMMENT and note.incident_key == ""
    assert note.text == "Rolled back the 10:00 deploy of checkout."
    assert note.pagerduty_id == "Q2BNJ8QY3V0M5L"

    ping = parse(fixture("pagey_ping"))
    assert decide(ping).kind is None and "pagey.ping" in decide(ping).reason
    assert actor_of(ping) == "pagerduty:pagerduty"


def _with(data: dict[str, Any], event_type: str) -> bytes:
    return webhook_body(event_type, data)


def test_events_that_ask_for_nothing() -> None:
    incident = json.loads(fixture("incident_acknowledged"))["event"]["data"]
    assert decide(parse(_with(incident, "incident.triggered"))).kind is None
    nobody = decide(parse(_with({**incident, "assignees": []}, "incident.reassigned")))
    assert nobody.kind is None and nobody.reason == "reassigned to nobody"
    note = json.loads(fixture("incident_annotated"))["event"]["data"]
    ours = decide(parse(_with({**note, "content": "[incident-bot] RCA"}, "incident.annotated")))
    assert ours.kind is None and ours.reason == "a note the bot wrote"
    odd = decide(parse(_with({"type": "service"}, "incident.resolved")))
    assert odd.kind is None and odd.reason.startswith("unexpected incident.resolved data")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"events": {}}', "event"),
        (b'{"event": {"id": "1", "event_type": "incident.resolved"}}', "event.data"),
    ],
)
def test_bodies_that_are_not_webhooks_say_why(body: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=f"^{problem}"):
        parse(body)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__ if value is not None else None


@pytest.mark.parametrize("name", ["incident_acknowledged", "incident_annotated"])
def test_the_fakes_webhooks_have_the_recorded_shape(name: str) -> None:
    recorded = json.loads(fixture(name))
    incident = FakeIncident("Q01001X", 1001, "incident-bot/INC-7/3f1c2a9b8d7e6f50", "k" * 32, "t")
    data = incident.note("a note") if name == "incident_annotated" else incident.json()
    made = json.loads(webhook_body(recorded["event"]["event_type"], data))
    assert _shape(made) == _shape(recorded)
