"""Auto-resolve against ``run_bot.py run`` on its embedded default: a simulated burst opens an
incident, the REST API shows the plan and confirms it, the run's step ends the scenario, the
scheduler verifies it, and the incident resolves with the run, its steps and its audit chain."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.botprocess import running_bot

FAST = {
    "id": "e2e-restart-upstream",
    "title": "Restart checkout's upstream (simulated, quick check)",
    "category": "application",
    "embedded_only": True,
    "matches": {"rules": ["web-5xx-burst"]},
    "target": "service:{service}",
    "steps": [
        {
            "name": "end the burst",
            "executor": "generator",
            "action": "end-scenario",
            "args": {"scenario": "web-5xx-burst"},
            "reversible": True,
        }
    ],
    "verify": {"wait": "1s"},
}


def test_a_simulated_burst_is_auto_resolved_and_verified(tmp_path: Path) -> None:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "fast.yaml").write_text(yaml.safe_dump({"playbooks": [FAST]}))
    with running_bot(tmp_path / "bot", BOT_PLAYBOOKS_PATH=str(books)) as bot:
        bot.simulate("web-5xx-burst")
        incident = bot.first_incident()["id"]
        path = f"/api/v1/incidents/{incident}/auto-resolve"
        body = {"playbook": "e2e-restart-upstream"}
        dry = bot.api.post(path, json=body)
        assert dry.status_code == 200, dry.text
        plan = dry.json()["plan"]
        assert plan["verdict"]["decision"] == "run", plan["verdict"]
        assert plan["steps"][0]["target"] == "generator:web-5xx-burst"
        started = bot.api.post(
            path, json={**body, "dry_run": False, "fingerprint": plan["fingerprint"]}
        )
        assert started.status_code == 200, started.text
        run = started.json()["run"]

        detail = bot.wait_for(
            lambda: (d := bot.detail(incident))["state"] == "resolved" and d,
            "the verified run to resolve the incident",
            timeout=30,
        )
        assert detail["state_changed_by"] == "playbook:e2e-restart-upstream"
        finished = bot.api.get(f"/api/v1/runs/{run['id']}").json()
        assert finished["status"] == "succeeded"
        assert finished["steps"][0]["status"] == "succeeded"
        chain = bot.api.get(f"/api/v1/audit/incident/{incident}").json()
        actions = [item["action"] for item in chain["items"]]
        assert actions[0] == "detect" and chain["intact"]
        assert actions.index("playbook_started") < actions.index("playbook_step_started")
        assert actions.index("auto_resolve") < actions.index("playbook_verified")
