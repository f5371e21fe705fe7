"""Who pressed: ``slack:<user id>``, and the ``slack-group:<id>`` user groups they belong to.

Groups come from ``usergroups.list(include_users=true)``, cached for a few minutes and fetched
by one caller at a time (200 simultaneous clicks make one call). When Slack cannot be asked,
the last known groups are used; with none known, a person has only their own role.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.errors import BotError
from integrations.slack.surface import SlackChatSurface

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 30.0


def actor(user_id: str) -> str:
    return f"slack:{user_id}"


def groups_unavailable(error: BotError, stale: bool) -> str:
    kept = "keeping the last known groups" if stale else "roles come from user ids only"
    return f"cannot read Slack user groups ({error}); {kept}"


class UserGroups:
    def __init__(
        self,
        surface: SlackChatSurface,
        enabled: bool,
        ttl: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._surface = surface
        self.enabled = enabled
        self._ttl = ttl
        self._now = monotonic
        self._members: dict[str, tuple[str, ...]] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def of(self, user_id: str) -> tuple[str, ...]:
        """The ``slack-group:<id>`` identities of a user (empty when groups are off)."""
        if not self.enabled:
            return ()
        if self._members is None or self._now() >= self._expires:
            async with self._lock:
                if self._members is None or self._now() >= self._expires:
                    await self._refresh()
        return (self._members or {}).get(user_id, ())

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            answer = await self._surface.call("usergroups.list", {"include_users": True}, read=True)
        except BotError as exc:
            log.warning(groups_unavailable(exc, self._members is not None))
            self._expires = self._now() + RETRY_AFTER_FAILURE
            return
        members: dict[str, list[str]] = {}
        for group in answer.get("usergroups") or []:
            if not isinstance(group, dict) or not group.get("id"):
                continue
            for user in group.get("users") or []:
                members.setdefault(str(user), []).append(f"slack-group:{group['id']}")
        self._members = {user: tuple(groups) for user, groups in members.items()}
        self._expires = self._now() + self._ttl
