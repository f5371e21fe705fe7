"""The Teams app package: ``manifest.json`` filled in for this bot, zipped with its two icons.

Upload the zip in Teams (Apps → Manage your apps → Upload an app) or through the Teams admin
center. ``run_bot.py teams-package`` calls :func:`build_package`.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import ConfigError

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "infrastructure" / "teams"
FILES = ("manifest.json", "color.png", "outline.png")
PACKAGE_NAME = "incident-bot-teams.zip"
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_PLACEHOLDER = re.compile(r"\{\{[A-Z_]+\}\}")
# zip entries get a fixed time so the same inputs make the same bytes
_STAMP = (2026, 1, 1, 0, 0, 0)


def manifest(app_id: str, base_url: str, template_dir: Path = TEMPLATE_DIR) -> str:
    """The manifest text for the bot ``app_id`` reachable at ``base_url`` (https)."""
    if not _GUID.fullmatch(app_id.strip()):
        raise ConfigError(
            f"TEAMS_APP_ID: the app registration's client id, a GUID (got {app_id!r})"
        )
    parts = urlsplit(base_url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            "BOT_PUBLIC_URL: Teams needs the bot's public https address, e.g. "
            f"https://bot.example.org (got {base_url!r})"
        )
    text = (template_dir / "manifest.json").read_text(encoding="utf-8")
    values = {
        "{{TEAMS_APP_ID}}": app_id.strip().lower(),
        "{{BOT_PUBLIC_URL}}": base_url.strip().rstrip("/"),
        "{{BOT_HOST}}": parts.hostname,
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    left = _PLACEHOLDER.findall(text)
    if left:
        raise ConfigError(f"the Teams manifest template has unfilled placeholders: {left}")
    json.loads(text)  # the filled template is still JSON
    return text


def build_package(app_id: str, out: Path, base_url: str, template_dir: Path = TEMPLATE_DIR) -> Path:
    """Write the app package to ``out`` (a file, or a folder to put ``PACKAGE_NAME`` in)."""
    text = manifest(app_id, base_url, template_dir)
    target = out / PACKAGE_NAME if out.is_dir() else out
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name in FILES:
            data = text.encode() if name == "manifest.json" else (template_dir / name).read_bytes()
            package.writestr(zipfile.ZipInfo(name, _STAMP), data, zipfile.ZIP_DEFLATED)
    return target
