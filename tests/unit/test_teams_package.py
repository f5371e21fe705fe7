"""The Teams app package: a filled manifest and two valid icons, zipped flat."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from bot.errors import ConfigError
from integrations.teams.commands import Verb
from integrations.teams.package import PACKAGE_NAME, TEMPLATE_DIR, build_package

APP = "9D3A1F6E-4B2C-4E8D-A1F0-6C5B4A3D2E1F"


def png_header(data: bytes) -> tuple[int, int, int]:
    """(width, height, colour type) of a PNG, checking its signature and chunk CRCs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, header = 8, None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", body[:10])
        at += 12 + length
    assert header is not None
    width, height, _, colour = header
    return width, height, colour


def test_package_holds_the_filled_manifest_and_icons(tmp_path: Path) -> None:
    path = build_package(APP, tmp_path, "https://bot.example.org/")
    assert path == tmp_path / PACKAGE_NAME
    with zipfile.ZipFile(path) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color, outline = package.read("color.png"), package.read("outline.png")
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP.lower()
    assert manifest["validDomains"] == ["bot.example.org"]
    assert manifest["developer"]["websiteUrl"] == "https://bot.example.org/"
    assert set(manifest["bots"][0]["scopes"]) == {"team", "personal", "groupChat"}
    commands = manifest["bots"][0]["commandLists"][0]["commands"]
    assert len(commands) <= 10 and {c["title"] for c in commands} <= {v.value for v in Verb}
    assert all(len(c["description"]) <= 128 for c in commands)
    assert len(manifest["description"]["short"]) <= 80 and len(manifest["name"]["short"]) <= 30
    assert png_header(color) == (192, 192, 6)
    assert png_header(outline) == (32, 32, 6)


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    first = build_package(APP, tmp_path / "a.zip", "https://bot.example.org")
    second = build_package(APP, tmp_path / "b.zip", "https://bot.example.org")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    ("app_id", "url", "problem"),
    [
        ("my-bot", "https://bot.example.org", "TEAMS_APP_ID"),
        (APP, "http://bot.example.org", "BOT_PUBLIC_URL"),
        (APP, "", "BOT_PUBLIC_URL"),
    ],
)
def test_bad_inputs_are_refused(tmp_path: Path, app_id: str, url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        build_package(app_id, tmp_path, url)


def test_the_template_is_a_valid_manifest_skeleton() -> None:
    text = (TEMPLATE_DIR / "manifest.json").read_text()
    manifest = json.loads(text)
    assert manifest["manifestVersion"] == "1.17" and "{{TEAMS_APP_ID}}" in text
