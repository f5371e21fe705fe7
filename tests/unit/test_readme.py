"""The README documents every setting and every CLI command a user can reach."""

from pathlib import Path

from bot.cli import build_parser
from bot.settings import ENV_PREFIX, Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    missing = [
        ENV_PREFIX + name.upper()
        for name in Settings.model_fields
        if f"`{ENV_PREFIX}{name.upper()}`" not in README
    ]
    assert missing == []


def test_every_cli_command_is_in_the_readme() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert [c for c in commands if f"run_bot.py {c}" not in README] == []


def test_quick_start_is_the_two_commands() -> None:
    start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in start and "make test" in start
