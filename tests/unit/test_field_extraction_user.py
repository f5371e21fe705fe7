"""A user's own field extractions: the YAML file, its errors (file:line), and their use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.hits import SearchQuery
from bot.errors import ConfigError
from bot.settings import Settings
from detectors.fields import (
    ExtractionFileError,
    load_extraction_files,
    load_extractor,
    producible_fields,
)
from integrations.local import Event
from integrations.local.backend import LocalSearchBackend
from integrations.local.events import EventStore

NOW = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)


def write(tmp_path: Path, text: str, name: str = "fields.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    return [str(p) for p in load_extraction_files([path])[1]]


def test_a_user_extraction_names_fields_for_its_sourcetypes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "myapp:*:\n"
        "  - 'took (?<duration_ms>\\d+) ms'\n"
        "  - regex: 'order (?P<order_id>\\d+) for (?<customer>\\S+)'\n"
        "    description: order events\n"
        "linux_secure: 'from (?<src>\\S+) via (?<proxy>\\S+)'\n",
    )
    extractor = load_extractor([path])

    found = extractor.extract("myapp:web", "order 42 for acme took 250 ms")
    assert found == {"duration_ms": "250", "order_id": "42", "customer": "acme"}
    assert extractor.extract("other", "order 42 for acme took 250 ms") == {}
    # theirs come first: they can correct a shipped extraction
    line = (
        "Dec  5 20:10:18 h sshd[1]: Failed password for root from 10.0.0.1 via 10.9.9.9 port 2 ssh2"
    )
    assert extractor.extract("linux_secure", line)["src"] == "10.0.0.1"
    assert extractor.extract("linux_secure", line)["proxy"] == "10.9.9.9"
    assert {"duration_ms", "order_id", "customer"} <= producible_fields("myapp:web", extractor)
    assert "duration_ms" not in producible_fields("myapp:web")


def test_problems_name_the_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "myapp:log:\n"
        "  - 'took (?<duration_ms>\\d+ ms'\n"
        "  - 'no named group (\\d+)'\n"
        "  - regx: 'x (?<y>\\d)'\n"
        "  - description: only a description\n"
        "other: []\n"
        "third:\n"
        "  - 42\n",
    )
    assert problems(path) == [
        f"{path}:2: bad regex 'took (?<duration_ms>\\\\d+ ms': missing ), unterminated"
        " subpattern at character 6",
        f"{path}:3: regex 'no named group (\\\\d+)' has no named group, so it extracts nothing;"
        " name what it captures, e.g. (?<user>\\S+)",
        f"{path}:4: unknown key 'regx' (did you mean 'regex'?); an entry takes: regex, description",
        f"{path}:5: an entry needs 'regex:'",
        f"{path}:6: 'other' needs a list of regexes",
        f"{path}:8: expected a regex (a string) or a mapping with 'regex:'",
    ]
    with pytest.raises(ExtractionFileError) as caught:
        load_extractor([path])
    assert isinstance(caught.value, ConfigError)
    assert f"{path}:4: unknown key 'regx'" in str(caught.value)


def test_invalid_yaml_and_wrong_shapes(tmp_path: Path) -> None:
    broken = write(tmp_path, "myapp:\n  - 'a\n", "broken.yaml")
    assert problems(broken)[0].startswith(f"{broken}:")
    assert "invalid YAML" in problems(broken)[0]
    listed = write(tmp_path, "- 'x (?<y>\\d)'\n", "listed.yaml")
    assert problems(listed) == [f"{listed}:1: expected a mapping of sourcetype -> list of regexes"]
    assert problems(write(tmp_path, "", "empty.yaml")) == []
    missing = tmp_path / "nope.yaml"
    assert problems(missing) == [f"{missing}:0: no such file or folder"]


def test_a_folder_of_files(tmp_path: Path) -> None:
    folder = tmp_path / "extractions"
    folder.mkdir()
    write(folder, "a:\n  - 'x=(?<x>\\d)'\n", "a.yaml")
    write(folder, "b:\n  - 'y=(?<y>\\d)'\n", "b.yml")
    extractor = load_extractor([folder])
    assert extractor.extract("a", "x=1 y=2") == {"x": "1"}
    assert extractor.extract("b", "x=1 y=2") == {"y": "2"}


def test_the_setting_and_the_local_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "myapp:log:\n  - 'took (?<duration_ms>\\d+) ms'\n")
    monkeypatch.setenv("BOT_FIELD_EXTRACTIONS_PATH", str(path))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.field_extraction_paths == [path]

    store = EventStore(":memory:")
    store.add(
        Event(NOW - timedelta(seconds=i + 1), f"GET /x took {100 * i} ms", sourcetype="myapp:log")
        for i in range(4)
    )
    backend = LocalSearchBackend(store, load_extractor(settings.field_extraction_paths))
    query = "sourcetype=myapp:log duration_ms>=200 | stats count max(duration_ms) as worst"
    (hit,) = backend.search_sync(
        SearchQuery(text=query, earliest=NOW - timedelta(hours=1), latest=NOW)
    )
    assert hit.fields == {"count": "2", "worst": "300"}
