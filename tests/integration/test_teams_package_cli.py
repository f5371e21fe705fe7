"""``run_bot.py teams-package``: the app package a Teams admin uploads, built from the app id and
the bot's public URL; without an app id, a clear error and no file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bot.cli import main


def test_the_command_writes_the_app_package_with_the_app_id_and_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.setenv("TEAMS_APP_ID", "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f")
    monkeypatch.setenv("BOT_PUBLIC_URL", "https://bot.example.org")
    assert main(["teams-package", "--out", str(tmp_path)]) == 0
    [package] = list(tmp_path.glob("*.zip"))
    assert str(package) in capsys.readouterr().out
    with zipfile.ZipFile(package) as archive:
        assert "manifest.json" in archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["id"] == "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
    assert "bot.example.org" in json.dumps(manifest)


def test_without_an_app_id_it_says_what_is_missing_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.delenv("TEAMS_APP_ID", raising=False)
    assert main(["teams-package", "--out", str(tmp_path)]) != 0
    assert "TEAMS_APP_ID" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.zip"))
