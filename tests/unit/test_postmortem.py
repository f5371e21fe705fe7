"""Postmortem drafts from the audit chain: golden Markdown and JSON, and the facts they draw on.

The chain is written the way the bot writes it (``audit.append`` with the entries the pipeline,
the analysis, the commands and the playbook engine write), with a fake clock.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot import postmortem
from bot.errors import NotFound
from bot.postmortem_md import to_markdown
from bot.store import audit
from bot.store.repo import ALERTS, INCIDENTS

GOLDEN = Path(__file__).parents[1] / "fixtures" / "postmortem"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
QUERY = "search index=web status>=500 | stats count by service | where count > 50"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seed_incident(
    engine: Engine,
    number: int,
    rule: str = "web-5xx-burst",
    service: str = "checkout",
    group: str = "service=checkout",
    opened: float = 0,
    state: str = "resolved",
    resolved: float | None = 12,
    resolved_by: str = "playbook:recycle-checkout",
    muted_by: str | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            INCIDENTS.insert().values(
                id=number,
                group_key=f"{rule}|{group}",
                active_key=None if state == "resolved" else f"{rule}|{group}",
                rule_id=rule,
                title=f"5xx burst on {service}",
                severity="high",
                category="application",
                service=service,
                host="web-1",
                state=state,
                state_changed_by=resolved_by if state == "resolved" else "",
                resolved_at=at(resolved) if resolved is not None else None,
                created_at=at(opened),
                updated_at=at(opened),
                first_seen=at(opened),
                last_seen=at(opened + 1),
                muted_by=muted_by,
            )
        )


def entry(minutes: float, actor: str, action: str, number: int, **fields: Any) -> dict[str, Any]:
    return {
        "at": at(minutes),
        "actor": actor,
        "action": action,
        "incident_id": number,
        "result": "applied",
        **fields,
    }


def seed_full_story(engine: Engine) -> None:
    """INC-3: detected, analysed, acknowledged, a person pressed a playbook, verified, resolved."""
    for n in (1, 2):  # the same rule fired twice before this week
        seed_incident(engine, n, opened=-60 * 24 * n, resolved=-60 * 24 * n + 5, resolved_by="bot")
    seed_incident(engine, 3)
    evidence = [
        {"id": "e1", "time": at(-1).isoformat(), "text": "GET /cart 503 upstream=checkout-7"},
        {"id": "e2", "time": at(-0.5).isoformat(), "text": "worker pool exhausted user=[redacted]"},
        {"id": "e3", "time": at(-0.2).isoformat(), "text": "GET /health 200"},
    ]
    run = {"run": 7, "playbook": "recycle-checkout", "target": "service:checkout"}
    with engine.begin() as conn:
        conn.execute(
            ALERTS.insert().values(
                incident_id=3,
                fingerprint="f" * 16,
                rule_id="web-5xx-burst",
                group_json='{"service": "checkout"}',
                count=84,
                value=84.0,
                first_seen=at(0),
                last_seen=at(1),
                evidence_json=json.dumps(evidence),
            )
        )
        audit.append(
            conn,
            [
                entry(
                    0,
                    "rule:web-5xx-burst",
                    "detect",
                    3,
                    surface="pipeline",
                    after_state="open",
                    detail="84 events in 1 alert(s)",
                    data={
                        "rule": "web-5xx-burst",
                        "query": QUERY,
                        "group": "service=checkout",
                        "events": 84,
                        "window": {"start": at(-5).isoformat(), "end": at(0).isoformat()},
                    },
                ),
                entry(
                    1,
                    "rca:bedrock",
                    "rca",
                    3,
                    surface="pipeline",
                    reason="ok",
                    detail="ok in 2.1s",
                    data={
                        "engine": "bedrock",
                        "status": "ok",
                        "confidence": 0.82,
                        "summary": "checkout's worker pool ran out after the 09:55 deploy",
                        "causes": [
                            {
                                "text": "pool exhausted for user=[redacted]",
                                "evidence_ids": ["e1", "e2"],
                            }
                        ],
                    },
                ),
                entry(
                    4,
                    "slack:U123",
                    "acknowledge",
                    3,
                    surface="slack",
                    before_state="open",
                    after_state="acknowledged",
                ),
                entry(
                    5,
                    "slack:U123",
                    "playbook_requested",
                    3,
                    surface="slack",
                    detail="requested recycle-checkout",
                    data=run,
                ),
                entry(
                    5,
                    "bot",
                    "playbook_started",
                    3,
                    surface="playbook",
                    detail="started",
                    data={**run, "run_status_after": "running"},
                ),
                entry(
                    5,
                    "bot",
                    "playbook_step_started",
                    3,
                    surface="playbook",
                    detail="step 1 of 1 (recycle workers) started",
                    data={**run, "name": "recycle workers"},
                ),
                entry(
                    6,
                    "bot",
                    "playbook_step_finished",
                    3,
                    surface="playbook",
                    detail="step 1 of 1 (recycle workers) succeeded",
                    data={
                        **run,
                        "phase": "step",
                        "name": "recycle workers",
                        "ok": True,
                        "attempts": 1,
                        "duration_ms": 412.0,
                        "output": "status 200",
                        "error": "",
                    },
                ),
                entry(
                    6,
                    "bot",
                    "playbook_verifying",
                    3,
                    surface="playbook",
                    detail="verifying in 5m",
                    data={**run, "run_status_after": "verifying"},
                ),
                entry(
                    12,
                    "playbook:recycle-checkout",
                    "auto_resolve",
                    3,
                    surface="playbook",
                    before_state="acknowledged",
                    after_state="resolved",
                    reason="auto-resolved by recycle-checkout, verified at 10:12",
                ),
                entry(
                    12,
                    "bot",
                    "playbook_verified",
                    3,
                    surface="playbook",
                    detail="auto-resolved by recycle-checkout, verified at 10:12: 0 hits",
                    data={**run, "run_status_after": "succeeded"},
                ),
            ],
        )


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed: UPDATE_GOLDEN=1 rewrites it"


def test_a_postmortem_tells_the_whole_story_in_markdown_and_json(engine: Engine) -> None:
    seed_full_story(engine)
    pm = postmortem.build(engine, 3, at(30))
    golden("INC-3.md", to_markdown(pm))
    golden("INC-3.json", json.dumps(postmortem.to_json(pm), indent=2) + "\n")
    assert pm.time_to_acknowledge == timedelta(minutes=4)
    assert pm.time_to_resolve == timedelta(minutes=12)
    assert pm.detection is not None and pm.detection.query == QUERY
    assert pm.root_cause is not None
    assert [e.id for e in pm.root_cause.evidence] == ["e1", "e2"]  # only what the causes cite
    (run,) = pm.runs
    assert (run.playbook, run.started_by, run.outcome) == (
        "recycle-checkout",
        "slack:U123",
        "succeeded",
    )
    assert [s.name for s in run.steps] == ["recycle workers"]
    assert any("fired 3 times" in s for s in pm.suggestions)
    assert any("consider auto: true" in s for s in pm.suggestions)
    assert pm.chain_intact


def test_an_incident_that_cleared_by_itself_suggests_a_higher_threshold(engine: Engine) -> None:
    seed_incident(engine, 5, resolved=3, resolved_by="bot")
    with engine.begin() as conn:
        audit.append(
            conn,
            [
                entry(0, "rule:web-5xx-burst", "detect", 5, after_state="open", data={}),
                entry(
                    3,
                    "bot",
                    "clear",
                    5,
                    surface="scheduler",
                    before_state="open",
                    after_state="resolved",
                ),
            ],
        )
    pm = postmortem.build(engine, 5, at(10))
    assert pm.time_to_acknowledge is None and pm.time_to_resolve == timedelta(minutes=3)
    assert pm.suggestions == (
        "resolved by itself (the condition cleared) with no action: "
        "raise the threshold or set realert",
    )
    text = to_markdown(pm)
    assert "Time to acknowledge: —" in text and "No playbook ran." in text


def test_an_open_incident_has_no_end_yet(engine: Engine) -> None:
    seed_incident(engine, 6, state="open", resolved=None)
    pm = postmortem.build(engine, 6, at(10))
    assert pm.resolved_at is None and pm.time_to_resolve is None
    assert "Impact window: 2026-11-22 10:00:00 UTC to not yet" in to_markdown(pm)
    assert postmortem.to_json(pm)["impact"] == {"start": at(0).isoformat(), "end": None}


def test_an_unknown_incident_is_named(engine: Engine) -> None:
    with pytest.raises(NotFound, match="no incident INC-99"):
        postmortem.build(engine, 99, at(0))
