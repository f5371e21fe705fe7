"""Who is on call: PagerDuty REST ``GET /oncalls`` for an escalation policy (or a service's).

Answers are cached for ``PAGERDUTY_ONCALL_CACHE_SECONDS`` (five minutes by default): a card
rendered for every incident of a storm costs one call per policy, not one per card. When
PagerDuty cannot be asked, a stale answer is better than none and is returned if there is one.

    lookup = OnCallLookup(settings)
    people = await lookup.who("PABC123")          # ["Ann (L1)", "Bob (L2)"]
    on_call_line(people)                          # "On call: Ann (L1), Bob (L2)"
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError, PermanentError, TransientError
from integrations.pagerduty.clients import call, rest_client
from integrations.pagerduty.settings import ENV_PREFIX, PagerDutySettings

log = logging.getLogger(__name__)
MAX_SHOWN = 6
_ID = re.compile(r"[A-Z0-9]{1,32}")


@dataclass(frozen=True, slots=True)
class OnCall:
    name: str
    level: int

    def __str__(self) -> str:
        return f"{self.name} (L{self.level})"


def on_call_line(people: Sequence[str], limit: int = MAX_SHOWN) -> str:
    """One short line for a card: ``On call: Ann (L1), Bob (L2)`` ("" when nobody is known)."""
    if not people:
        return ""
    shown = ", ".join(people[:limit])
    more = f" and {len(people) - limit} more" if len(people) > limit else ""
    return f"On call: {shown}{more}"


def on_calls(body: Any) -> list[OnCall]:
    """The people in a ``GET /oncalls`` answer, lowest escalation level first, each once."""
    entries = body.get("oncalls") if isinstance(body, dict) else None
    best: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        name = str(user.get("summary") or user.get("name") or user.get("id") or "").strip()
        level = entry.get("escalation_level")
        if not name or not isinstance(level, int):
            continue
        best[name] = min(level, best.get(name, level))
    return sorted((OnCall(n, lv) for n, lv in best.items()), key=lambda o: (o.level, o.name))


class OnCallLookup:
    """Cached on-call lookups over python-pagerduty's ``RestApiV2Client``."""

    def __init__(
        self, settings: PagerDutySettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if not settings.rest_enabled:
            raise ConfigError(f"{ENV_PREFIX}API_TOKEN: required to look up who is on call")
        self._settings = settings
        self._secrets = settings.secret_values()
        self._rest = rest_client(settings, settings.verify())
        self._monotonic = monotonic
        self._ttl = settings.oncall_cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def who(self, escalation_policy: str = "", *, service: str = "") -> list[str]:
        """``["Ann (L1)", "Bob (L2)"]`` for an escalation policy id, or a service id's policy."""
        return [str(p) for p in await self.people(escalation_policy, service=service)]

    async def people(self, escalation_policy: str = "", *, service: str = "") -> list[OnCall]:
        if not escalation_policy and not service:
            raise PermanentError("name an escalation policy or a service")
        for given in (escalation_policy, service):
            if given and not _ID.fullmatch(given):
                raise PermanentError(f"{given!r} is not a PagerDuty id (like PABC123)")
        policy = escalation_policy or await self._policy_of(service)
        found: list[OnCall] = await self._cached(
            f"oncalls:{policy}",
            lambda: self._get(
                "/oncalls",
                {"escalation_policy_ids[]": [policy], "earliest": "true", "limit": 100},
                "on-call lookup",
            ),
            on_calls,
        )
        return found

    async def _policy_of(self, service: str) -> str:
        def policy(body: Any) -> str:
            service_body = body.get("service") if isinstance(body, dict) else None
            ep = service_body.get("escalation_policy") if isinstance(service_body, dict) else None
            if not isinstance(ep, dict) or not ep.get("id"):
                raise PermanentError(f"PagerDuty service {service} has no escalation policy")
            return str(ep["id"])

        found: str = await self._cached(
            f"service:{service}",
            lambda: self._get(f"/services/{service}", {}, "service lookup"),
            policy,
        )
        return found

    async def _get(self, path: str, params: dict[str, Any], what: str) -> Any:
        return await call(
            self._rest.jget,
            path,
            params=params,
            what=what,
            deadline=self._settings.timeout + 2.0,
            secrets=self._secrets,
        )

    async def _cached(self, key: str, fetch: Callable[[], Any], shape: Callable[[Any], Any]) -> Any:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one call per key at a time: a storm asks once
            held = self._cache.get(key)
            if held is not None and self._monotonic() - held[0] < self._ttl:
                return held[1]
            try:
                value = shape(await fetch())
            except TransientError as exc:
                if held is None:
                    raise
                log.warning("on-call lookup failed (%s); using the answer from before", exc)
                return held[1]
            self._cache[key] = (self._monotonic(), value)
            return value

    def close(self) -> None:
        self._rest.close()
