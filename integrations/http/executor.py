"""HTTP: call a URL on the allowlist (``BOT_PLAYBOOK_HTTP_ALLOWLIST``), nothing else.

``request`` sends ``method`` (default POST) to ``url`` with an optional JSON ``body`` and expects
``expect_status`` (default any 2xx; also ``"200"``, ``"200,202"`` or ``"2xx"``). The URL must
start with an allowlisted prefix at a boundary (``https://ops.example.com/api`` allows
``https://ops.example.com/api/drain``, not ``https://ops.example.com/apix`` nor
``https://ops.example.com.evil.net``); redirects are not followed. 429 and 5xx answers and
network errors raise :class:`~bot.errors.TransientError` (with the peer's ``Retry-After``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import httpx

from bot.errors import PermanentError, TransientError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.retry_after import retry_after_seconds
from integrations.steps import Params, check_params, check_timeout, clip, frozen

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_STATUS = re.compile(r"^([1-5]xx|[1-5]\d\d)$")


class HttpExecutor:
    """Action ``request``; target ``http:<url>``. ``transport`` is for tests (httpx seams)."""

    name = "http"

    def __init__(
        self,
        allowlist: Sequence[str],
        token: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._allowlist = tuple(normalise(prefix) for prefix in allowlist if prefix.strip())
        self._token = token
        self._transport = transport

    async def plan(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> ExecutionPlan:
        check_params(self.name, action, params)
        timeout = check_timeout(timeout_s)
        read = Params(f"http {action}", params)
        url = normalise(read.text("url"))
        if not any(allowed(url, prefix) for prefix in self._allowlist):
            listed = ", ".join(self._allowlist) or "nothing (BOT_PLAYBOOK_HTTP_ALLOWLIST is empty)"
            raise PermanentError(
                f"http request: {url} is not on the allowlist (BOT_PLAYBOOK_HTTP_ALLOWLIST"
                f" allows {listed})"
            )
        method = read.text("method", "POST").upper()
        if method not in METHODS:
            raise PermanentError(
                f"http request: method {method} is not one of {', '.join(sorted(METHODS))}"
            )
        body = read.json("body")
        expect = read.text("expect_status", "2xx").replace(" ", "").lower()
        if not all(_STATUS.match(item) for item in expect.split(",")):
            raise PermanentError(
                f"http request: expect_status {expect!r} must be codes like 200,202 or 2xx"
            )
        values: dict[str, ParamValue] = {"url": url, "method": method, "expect_status": expect}
        if body is not None:
            values["body"] = body
        sent = f" body={clip(body, 200)}" if body is not None else ""
        return ExecutionPlan(
            executor=self.name,
            action=action,
            target=f"http:{url}",
            description=f"http {method} {url}{sent}, expect {expect} (within {timeout:g}s)",
            params=frozen(values),
            timeout_s=timeout,
        )

    async def run(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        url = read.text("url")
        if not any(allowed(url, prefix) for prefix in self._allowlist):  # the list may change
            raise PermanentError(f"http request: {url} is no longer on the allowlist")
        method = read.text("method", "POST")
        headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.1"}
        content: bytes | None = None
        if read.has("body"):
            content = read.text("body").encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with httpx.AsyncClient(
                timeout=plan.timeout_s, follow_redirects=False, transport=self._transport
            ) as client:
                response = await client.request(method, url, content=content, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(
                f"http {method} {url}: no answer within {plan.timeout_s:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise TransientError(f"http {method} {url}: {type(exc).__name__} ({exc})") from None
        status = response.status_code
        text = clip(response.text)
        if status == 429 or status >= 500:
            raise TransientError(
                f"http {method} {url} answered {status}: {clip(text, 300)}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if not expected(status, read.text("expect_status", "2xx")):
            return StepResult(
                ok=False,
                output=text,
                error=clip(
                    f"http {method} {url} answered {status}, expected"
                    f" {read.text('expect_status', '2xx')}: {text}"
                ),
            )
        return StepResult(ok=True, output=clip(f"{status}: {text}"))


def normalise(url: str) -> str:
    """``url`` with its scheme and host in lower case and dot segments refused."""
    url = url.strip()
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"http request: {url!r} is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PermanentError(f"http request: {url!r} is not an http(s) URL")
    if parsed.userinfo:
        raise PermanentError(f"http request: {url!r} carries credentials; use the token setting")
    if any(part in ("..", ".") for part in url.split("?", 1)[0].split("/")[3:]):
        raise PermanentError(f"http request: {url!r} has . or .. path segments")
    return str(parsed)


def allowed(url: str, prefix: str) -> bool:
    """Whether ``url`` starts with ``prefix`` at a boundary (the prefix ends in ``/``, or the
    URL goes on with ``/``, ``?`` or ``#``, or ends)."""
    if not url.startswith(prefix):
        return False
    rest = url[len(prefix) :]
    return prefix.endswith("/") or rest == "" or rest[0] in "/?#"


def expected(status: int, expect: str) -> bool:
    for item in expect.split(","):
        if item.endswith("xx") and str(status)[0] == item[0]:
            return True
        if item == str(status):
            return True
    return False


__all__ = ["METHODS", "HttpExecutor", "allowed", "expected", "normalise"]
