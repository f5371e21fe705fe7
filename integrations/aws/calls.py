"""AWS calls for the playbook executors: lazy clients, worker threads, errors in our terms.

Clients are plain ``boto3.client(service, region_name=...)``: they honour ``AWS_ENDPOINT_URL``
(and ``AWS_ENDPOINT_URL_<SERVICE>``) and the standard credential chain (environment, shared
files, SSO, the ECS task role, instance metadata). Each is built on first use, never at import.

Errors: throttling, 5xx answers and network timeouts raise :class:`~bot.errors.TransientError`
(the engine retries the step); a refusal (access denied, validation, a missing resource) raises
:class:`AwsRefused`, which :class:`AwsExecutor` turns into a failed step naming the AWS code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.errors import PermanentError, TransientError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.steps import check_params, check_timeout, clip, frozen

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServerException",
        "ServiceException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class AwsRefused(Exception):
    """AWS refused the call for good (access denied, validation, not found)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Where the executors' clients point and how often they poll.

    ``region`` empty lets boto3 choose (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile).
    """

    region: str = ""
    poll_s: float = 3.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0


class AwsClients:
    """boto3 clients by service name, built lazily once each; ``prebuilt`` replaces some
    (tests hand in clients wrapped in botocore's ``Stubber``)."""

    def __init__(self, settings: AwsSettings, prebuilt: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = dict(prebuilt or {})
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=self.settings.connect_timeout_s,
                    read_timeout=self.settings.read_timeout_s,
                    retries={"total_max_attempts": 1, "mode": "standard"},
                )
                client = boto3.client(
                    service, region_name=self.settings.region or None, config=config
                )
                self._clients[service] = client
            return client


def translate(exc: Exception, what: str) -> Exception:
    """``exc`` from botocore as TransientError, AwsRefused or PermanentError."""
    from botocore.exceptions import (  # imported with the first client, not with this module
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    network = (
        EndpointConnectionError,
        ConnectTimeoutError,
        ReadTimeoutError,
        ConnectionClosedError,
    )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "Unknown"
        message = str(error.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"{what}: AWS answered {code} ({clip(message, 300)})")
        return AwsRefused(code, clip(message, 1000))
    if isinstance(exc, network):
        return TransientError(f"{what}: {type(exc).__name__} ({exc})")
    if isinstance(exc, NoCredentialsError):
        return AwsRefused("NoCredentials", "no AWS credentials were found")
    if isinstance(exc, BotoCoreError):
        return AwsRefused(type(exc).__name__, clip(str(exc), 1000))
    return exc


async def call(what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, with botocore's errors translated."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError | BotoCoreError):
            raise translate(exc, what) from None
        raise


class AwsExecutor:
    """The shared frame of the AWS executors: check, plan, then run under the plan's timeout.

    Subclasses set ``name`` and implement ``_describe`` (pure: target and description, from
    checked parameters) and ``_carry_out`` (the calls).
    """

    name = ""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @property
    def poll_s(self) -> float:
        return self._clients.settings.poll_s

    async def client(self, service: str) -> Any:
        """The service's client; the first one is built in a worker thread (it reads files)."""
        return await asyncio.to_thread(self._clients.get, service)

    async def plan(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> ExecutionPlan:
        check_params(self.name, action, params)
        timeout = check_timeout(timeout_s)
        values, target, description = self._describe(action, params, timeout)
        return ExecutionPlan(
            executor=self.name,
            action=action,
            target=target,
            description=description,
            params=frozen(values),
            timeout_s=timeout,
        )

    async def run(self, plan: ExecutionPlan) -> StepResult:
        if plan.executor != self.name:
            raise PermanentError(f"a {plan.executor} plan cannot run on the {self.name} executor")
        try:
            async with asyncio.timeout(plan.timeout_s):
                return await self._carry_out(plan)
        except TimeoutError:
            raise TransientError(
                f"{plan.executor} {plan.action} on {plan.target} did not finish within"
                f" {plan.timeout_s:g}s"
            ) from None
        except AwsRefused as refused:
            return StepResult(
                ok=False, error=clip(f"AWS refused: {refused.code}: {refused.message}")
            )

    def _describe(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> tuple[dict[str, ParamValue], str, str]:
        raise NotImplementedError

    async def _carry_out(self, plan: ExecutionPlan) -> StepResult:
        raise NotImplementedError


def failed(error: str, output: str = "") -> StepResult:
    return StepResult(ok=False, output=clip(output), error=clip(error))


def done(output: str) -> StepResult:
    return StepResult(ok=True, output=clip(output))


__all__ = [
    "TRANSIENT_CODES",
    "AwsClients",
    "AwsExecutor",
    "AwsRefused",
    "AwsSettings",
    "call",
    "done",
    "failed",
    "translate",
]
