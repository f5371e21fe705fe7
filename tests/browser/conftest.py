"""The ``bot`` fixture: ``run_bot.py run`` as a subprocess (see tests/botprocess.py), and
``demo_bot``: the same bot with the embedded default's demo playbook that fixes web-5xx-burst."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.botprocess import BotProcess, running_bot

#: demo-restart-upstream as shipped, but verifying after 3 s (the file says why that is honest)
DEMO_PLAYBOOKS = Path(__file__).resolve().parent.parent / "fixtures" / "playbooks" / "browser"


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[BotProcess]:
    with running_bot(tmp_path / "bot") as process:
        yield process


@pytest.fixture
def demo_bot(tmp_path: Path) -> Iterator[BotProcess]:
    """A bot on its embedded default (local search, generator executor, shipped web-5xx-burst
    rule searched every 2 s) whose only playbook is demo-restart-upstream."""
    with running_bot(
        tmp_path / "bot",
        BOT_SHIPPED_PLAYBOOKS="false",
        BOT_PLAYBOOKS_PATH=str(DEMO_PLAYBOOKS),
    ) as process:
        yield process
