"""The playbook executors, built from their settings: one per executor of the action catalog.

:func:`build_executors` answers them keyed by catalog name (``ssm``, ``ecs``, ``lambda``,
``elb``, ``http``, and, only on the embedded default, ``shell`` and ``generator``). Building
them makes no AWS call and creates no client; each AWS client is made on its first use.

Settings (environment):

``BOT_PLAYBOOK_HTTP_ALLOWLIST``
    comma-separated URL prefixes the ``http`` executor may call (empty: none)
``BOT_PLAYBOOK_HTTP_TOKEN``
    sent as ``Authorization: Bearer ...`` to those URLs when set
``BOT_PLAYBOOK_SHELL_ALLOWLIST``
    comma-separated commands (names on ``PATH`` or absolute paths) ``shell`` may run
``BOT_PLAYBOOK_AWS_POLL_INTERVAL``
    how often SSM, ECS and ELB are polled while a step waits (default ``3s``)
``AWS_REGION`` / ``AWS_DEFAULT_REGION``
    the region of the AWS clients; endpoints (``AWS_ENDPOINT_URL``) and credentials come from
    boto3's own configuration chain
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import PermanentError
from bot.ports import Executor
from bot.settings import Duration, load_checked
from integrations.aws.calls import AwsClients, AwsSettings
from integrations.aws.ecs import EcsExecutor
from integrations.aws.elb import ElbExecutor
from integrations.aws.functions import LambdaExecutor
from integrations.aws.ssm import SsmExecutor
from integrations.http.executor import HttpExecutor, normalise
from integrations.local.fix import GeneratorExecutor
from integrations.local.generator import Generator
from integrations.local.shell import ShellExecutor

ENV_NAMES = {
    "http_allowlist": "BOT_PLAYBOOK_HTTP_ALLOWLIST",
    "http_token": "BOT_PLAYBOOK_HTTP_TOKEN",
    "shell_allowlist": "BOT_PLAYBOOK_SHELL_ALLOWLIST",
    "aws_poll_interval": "BOT_PLAYBOOK_AWS_POLL_INTERVAL",
    "aws_region": "AWS_REGION",
}


class ExecutorSettings(BaseSettings):
    """What the executors may reach: the HTTP and shell allowlists, and the AWS region."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    http_allowlist: str = Field(default="", validation_alias="BOT_PLAYBOOK_HTTP_ALLOWLIST")
    http_token: SecretStr = Field(default=SecretStr(""), validation_alias="BOT_PLAYBOOK_HTTP_TOKEN")
    shell_allowlist: str = Field(default="", validation_alias="BOT_PLAYBOOK_SHELL_ALLOWLIST")
    aws_poll_interval: Duration = Field(
        default=timedelta(seconds=3), validation_alias="BOT_PLAYBOOK_AWS_POLL_INTERVAL"
    )
    aws_region: str = Field(
        default="", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )

    @property
    def http_prefixes(self) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.http_allowlist.split(",") if item.strip())

    @property
    def shell_commands(self) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.shell_allowlist.split(",") if item.strip())

    def problems(self) -> list[str]:
        """What is wrong with these settings, one line per variable."""
        found = []
        for prefix in self.http_prefixes:
            try:
                normalise(prefix)
            except PermanentError as exc:
                found.append(f"BOT_PLAYBOOK_HTTP_ALLOWLIST: {exc}".replace("http request: ", ""))
        if self.aws_poll_interval <= timedelta(0):
            found.append("BOT_PLAYBOOK_AWS_POLL_INTERVAL: must be more than 0s")
        return found


def load_executor_settings(**overrides: Any) -> ExecutorSettings:
    """Settings from the environment (``overrides`` by field name win); ConfigError if unusable."""
    return load_checked(ExecutorSettings, ENV_NAMES, ExecutorSettings.problems, **overrides)


def build_executors(
    settings: ExecutorSettings,
    generator: Generator | None,
    embedded: bool,
    clients: AwsClients | None = None,
) -> dict[str, Executor]:
    """Every executor this process may use, by catalog name. ``shell`` and ``generator`` exist
    only when ``embedded`` (and ``generator`` only with a generator); ``clients`` replaces the
    lazily built AWS clients."""
    aws = clients or AwsClients(
        AwsSettings(
            region=settings.aws_region,
            poll_s=settings.aws_poll_interval.total_seconds(),
        )
    )
    executors: dict[str, Executor] = {
        "ssm": SsmExecutor(aws),
        "ecs": EcsExecutor(aws),
        "lambda": LambdaExecutor(aws),
        "elb": ElbExecutor(aws),
        "http": HttpExecutor(settings.http_prefixes, settings.http_token.get_secret_value()),
    }
    if embedded:
        executors["shell"] = ShellExecutor(settings.shell_commands)
        if generator is not None:
            executors["generator"] = GeneratorExecutor(generator)
    return executors


__all__ = ["ENV_NAMES", "ExecutorSettings", "build_executors", "load_executor_settings"]
