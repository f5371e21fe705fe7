"""The console's rule page flags a rule whose incidents lacked a group value."""

from __future__ import annotations

from pathlib import Path

from bot.pipeline.ingest import ingest
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.integration.test_api import make_client


async def test_rules_page_flags_a_rule_whose_incident_had_no_src(
    tmp_path: Path, clock: FakeClock
) -> None:
    async for client, runtime in make_client(tmp_path, clock):
        guessing = alert(
            clock.now(), rule="ssh-password-guessing", group=(("host", "web-2"), ("src", ""))
        )
        with runtime.engine.begin() as conn:
            ingest(conn, [guessing], clock.now(), console_policy())

        page = await client.get("/rules")

        assert page.status_code == 200
        assert "1 recent incident had no src: its events lack the field it groups by" in page.text
        assert page.text.count("rule-flag") == 1
