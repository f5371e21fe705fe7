"""The ``bot`` fixture: ``run_bot.py run`` as a subprocess (see tests/botprocess.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.botprocess import BotProcess, running_bot


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[BotProcess]:
    with running_bot(tmp_path / "bot") as process:
        yield process
