from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import RateLimit, Route, is_loopback_host, load_settings

TOKEN = "tok-7f3a9c2e51"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("BOT_"):
            monkeypatch.delenv(name)


def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    monkeypatch.setenv("BOT_SETTINGS_FILE", str(path))
    return path


def config_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as refused:
        load_settings(**overrides)
    return str(refused.value)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///./data/bot.db"
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8080
    assert settings.redaction_mode == "balanced"
    assert settings.console_token is None
    assert settings.search_backend == "local"
    assert settings.flap_window == timedelta(minutes=30)
    assert settings.card_refresh == timedelta(seconds=60)
    assert settings.schedule_jitter == timedelta(seconds=2)
    assert settings.lease_heartbeat == timedelta(seconds=5)
    assert settings.retention_days == 30
    assert settings.outbox_max_attempts == 12
    assert settings.routes == []
    assert settings.outbox_rate_limits == {}
    assert settings.rule_paths == []
    assert settings.is_loopback
    assert settings.console_url == "http://127.0.0.1:8080"
    assert settings.secret_values() == []


def test_env_vars_set_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_HTTP_PORT", "9090")
    monkeypatch.setenv("BOT_FLAP_WINDOW", "1h30m")
    monkeypatch.setenv("BOT_CARD_REFRESH", "15")
    monkeypatch.setenv("BOT_REDACTION_MODE", "strict")
    monkeypatch.setenv("BOT_RULES_PATH", "rules/a:rules/b::")
    monkeypatch.setenv("BOT_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("BOT_PUBLIC_URL", "https://bot.example.org/")
    settings = load_settings()
    assert settings.http_port == 9090
    assert settings.flap_window == timedelta(hours=1, minutes=30)
    assert settings.card_refresh == timedelta(seconds=15)
    assert settings.redaction_mode == "strict"
    assert settings.rule_paths == [Path("rules/a"), Path("rules/b")]
    assert settings.log_level == "DEBUG"
    assert settings.console_url == "https://bot.example.org"


def test_env_var_names_ignore_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("bot_http_port", "9191")
    assert load_settings().http_port == 9191


def test_structured_values_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_OUTBOX_RATE_LIMITS", '{"slack": {"rate": 1, "burst": 3}}')
    monkeypatch.setenv("BOT_ROUTES", '[{"surface": "slack", "channel": "#db", "category": ["db"]}]')
    settings = load_settings()
    assert settings.outbox_rate_limits == {"slack": RateLimit(rate=1, burst=3)}
    assert settings.routes == [Route(surface="slack", channel="#db", category=["db"])]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "BOT_HTTP_PORT",
            "abc",
            "BOT_HTTP_PORT: Input should be a valid integer, unable to parse string as an "
            "integer (got 'abc')",
        ),
        (
            "BOT_FLAP_WINDOW",
            "5 minutes",
            "BOT_FLAP_WINDOW: bad duration '5 minutes': use forms like 30s, 5m, 1h, 1d "
            "(got '5 minutes')",
        ),
        (
            "BOT_REDACTION_MODE",
            "loud",
            "BOT_REDACTION_MODE: Input should be 'strict', 'balanced' or 'off' (got 'loud')",
        ),
    ],
)
def test_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    message = config_error()
    assert message == expected
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOT_HTTP_PORT", "70000"),
        ("BOT_HTTP_PORT", "-1"),
        ("BOT_RETENTION_DAYS", "0"),
        ("BOT_MAX_BODY_BYTES", "10"),
        ("BOT_SEARCH_BACKEND", "elastic"),
        ("BOT_LOG_FORMAT", "xml"),
        ("BOT_OUTBOX_MAX_ATTEMPTS", "0"),
        ("BOT_LEASE_HEARTBEAT", "soon"),
    ],
)
def test_out_of_range_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    message = config_error()
    assert message.startswith(f"{name}: ")
    assert f"(got {value!r})" in message


def test_each_problem_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_HTTP_PORT", "abc")
    monkeypatch.setenv("BOT_REDACTION_MODE", "loud")
    lines = config_error().splitlines()
    assert len(lines) == 2
    assert {line.split(":", 1)[0] for line in lines} == {"BOT_HTTP_PORT", "BOT_REDACTION_MODE"}


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "bot.internal"])
def test_non_loopback_host_needs_a_console_token(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("BOT_HTTP_HOST", host)
    message = config_error()
    assert message.startswith("BOT_CONSOLE_TOKEN: required when BOT_HTTP_HOST is not a loopback")
    assert f"BOT_HTTP_HOST={host}" in message


def test_non_loopback_host_with_a_token_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("BOT_CONSOLE_TOKEN", TOKEN)
    settings = load_settings()
    assert not settings.is_loopback
    assert settings.console_token is not None
    assert settings.console_token.get_secret_value() == TOKEN
    assert settings.secret_values() == [TOKEN]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("", False),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_token_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_CONSOLE_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_HTTP_HOST", "0.0.0.0")
    settings = load_settings()
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    monkeypatch.setenv("BOT_HTTP_PORT", "abc")
    monkeypatch.setenv("BOT_FLAP_WINDOW", "5 minutes")
    assert TOKEN not in config_error()


def test_token_not_shown_when_it_is_the_bad_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file(tmp_path, monkeypatch, "console_token: 8675309421\n")
    message = config_error()
    assert message.startswith("BOT_CONSOLE_TOKEN: ")
    assert "8675309421" not in message


def test_settings_file_supplies_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file(
        tmp_path,
        monkeypatch,
        "http_port: 9000\nflap_window: 10m\nredaction_mode: strict\n"
        "routes:\n  - {surface: slack, channel: '#ops', severity: [critical]}\n",
    )
    settings = load_settings()
    assert settings.http_port == 9000
    assert settings.flap_window == timedelta(minutes=10)
    assert settings.redaction_mode == "strict"
    assert settings.routes == [Route(surface="slack", channel="#ops", severity=["critical"])]


def test_env_overrides_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file(tmp_path, monkeypatch, "http_port: 9000\nflap_window: 10m\n")
    monkeypatch.setenv("BOT_HTTP_PORT", "9001")
    settings = load_settings()
    assert settings.http_port == 9001
    assert settings.flap_window == timedelta(minutes=10)


def test_settings_file_values_are_validated_under_the_variable_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file(tmp_path, monkeypatch, "redaction_mode: loud\n")
    assert config_error() == (
        "BOT_REDACTION_MODE: Input should be 'strict', 'balanced' or 'off' (got 'loud')"
    )


def test_unknown_setting_in_the_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file(tmp_path, monkeypatch, "http_prot: 9000\n")
    assert config_error() == "BOT_HTTP_PROT: unknown setting (got 9000)"


def test_settings_file_that_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "absent.yaml"
    monkeypatch.setenv("BOT_SETTINGS_FILE", str(missing))
    assert config_error() == (
        f"BOT_SETTINGS_FILE: cannot read {missing}: No such file or directory"
    )


def test_settings_file_that_is_not_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = settings_file(tmp_path, monkeypatch, "http_port: [9000\n")
    assert config_error().startswith(f"BOT_SETTINGS_FILE: {path} is not valid YAML")


def test_settings_file_that_is_not_a_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, monkeypatch, "- http_port\n")
    assert config_error() == f"BOT_SETTINGS_FILE: {path} must hold a mapping of settings"


def test_generator_is_on_by_default_for_the_local_backend() -> None:
    assert load_settings().generator_enabled


@pytest.mark.parametrize(("value", "enabled"), [("false", False), ("0", False), ("true", True)])
def test_generator_can_be_set(monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool) -> None:
    monkeypatch.setenv("BOT_GENERATOR", value)
    assert load_settings().generator_enabled is enabled


def test_overrides_take_precedence_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_HTTP_PORT", "9001")
    assert load_settings(http_port=7000).http_port == 7000


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.http_port = 1  # type: ignore[misc]


def test_absurd_duration_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_FLAP_WINDOW", "9999999999d")
    assert config_error().startswith("BOT_FLAP_WINDOW: ")
