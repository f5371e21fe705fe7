"""``PagerDutyPager``: the bot's pages as PagerDuty Events API v2 events.

One ``EventsApiV2Client`` per routing key; a page's ``channel`` picks the key (see
:mod:`integrations.pagerduty.settings`). Every event of an incident carries the same
``dedup_key``, so a repeated trigger (a retry after a crash) never opens a second PagerDuty
incident, and acknowledge/resolve land on the right one. The Events API does not say which
incident it opened: with a REST token, the trigger looks it up by key (bounded, best effort) so
the card can link to it.

Budget: besides the outbox's per-channel rate limit, each routing key has its own token bucket
(``PAGERDUTY_EVENTS_PER_MINUTE``), so channels sharing a key cannot exceed it together; a page
waits briefly for a token, or gives the outbox a ``retry_after``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pagerduty

from bot.domain.page import KEY_MAX, SUMMARY_MAX, Page
from bot.errors import NotFound, PermanentError, TransientError
from bot.ports import Health, HealthStatus, PageRef
from bot.ratelimit import TokenBucket
from integrations.pagerduty.clients import call, events_client, rest_client
from integrations.pagerduty.oncall import OnCallLookup, on_call_line
from integrations.pagerduty.settings import ENV_PREFIX, PagerDutySettings

log = logging.getLogger(__name__)
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
CLIENT = "incident-bot"
NOTE_MARK = "[incident-bot]"  # notes the bot writes start with this; their webhooks are ignored
MAX_BUDGET_WAIT = 2.0
LOOKUP_EVERY = 0.5


def event_body(page: Page) -> dict[str, Any]:
    """The Events v2 fields of a trigger (besides routing key, action and dedup key)."""
    severity = page.severity if page.severity in SEVERITIES else "error"
    payload: dict[str, Any] = {
        "summary": (page.summary.strip() or page.dedup_key)[:SUMMARY_MAX],
        "source": (page.source.strip() or CLIENT)[:255],
        "severity": severity,
    }
    for field, value in (("component", page.component), ("group", page.group)):
        if value:
            payload[field] = value[:255]
    if page.kind:
        payload["class"] = page.kind[:255]
    if page.details:
        payload["custom_details"] = dict(page.details)
    body: dict[str, Any] = {"payload": payload, "client": CLIENT}
    links = [{"href": href, "text": text} for text, href in page.links if href]
    if links:
        body["links"] = links
        body["client_url"] = links[0]["href"]
    return body


class PagerDutyPager:
    """Implements :class:`bot.ports.Pager` over python-pagerduty."""

    name = "pagerduty"

    def __init__(
        self, settings: PagerDutySettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._verify = settings.verify()
        self._secrets = settings.secret_values()
        self._monotonic = monotonic
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}
        self._budgets: dict[str, TokenBucket] = {}
        self._rest = rest_client(settings, self._verify) if settings.rest_enabled else None
        self._oncall = OnCallLookup(settings, monotonic) if settings.rest_enabled else None
        self._deadline = settings.timeout + 2.0

    # Pager -----------------------------------------------------------------------------------

    async def trigger(self, page: object, channel: str) -> PageRef:
        assert isinstance(page, Page)
        key = page.dedup_key[:KEY_MAX]
        await self._send(channel, "trigger", key, event_body(page))
        found = await self._incident(key)
        if found is None:
            return PageRef(key)
        return PageRef(key, str(found.get("html_url") or ""), await self._oncall_of(found))

    async def acknowledge(self, key: str, channel: str) -> None:
        await self._send(channel, "acknowledge", key[:KEY_MAX], {})

    async def resolve(self, key: str, channel: str) -> None:
        await self._send(channel, "resolve", key[:KEY_MAX], {})

    async def check(self) -> Health:
        """Configuration, and the REST API when a token is set (the Events API has no health
        endpoint, and a test event would page someone)."""
        problems = self.settings.problems()
        if problems:
            return Health(HealthStatus.DOWN, "; ".join(problems))
        if self._rest is None:
            return Health(HealthStatus.OK, "events only (no REST token: no incident links)")
        try:
            await call(
                self._rest.jget,
                "/abilities",
                what="health check (GET /abilities)",
                deadline=self._deadline,
                secrets=self._secrets,
            )
        except (TransientError, PermanentError) as exc:
            return Health(HealthStatus.DEGRADED, f"paging works; REST API: {exc}")
        return Health(HealthStatus.OK)

    # REST extras -----------------------------------------------------------------------------

    async def incident_url(self, key: str) -> str:
        """The PagerDuty incident's link for a dedup key ("" without REST or when not found in
        time)."""
        found = await self._incident(key)
        return str(found.get("html_url") or "") if found is not None else ""

    async def _incident(self, key: str) -> dict[str, Any] | None:
        """The PagerDuty incident of a dedup key (None without REST or when not found in time).
        PagerDuty opens incidents a moment after accepting the event: poll briefly."""
        if self._rest is None or self.settings.lookup_timeout <= 0:
            return None
        give_up = self._monotonic() + self.settings.lookup_timeout
        while True:
            try:
                found = await self._find_incident(key, give_up)
            except (TransientError, PermanentError) as exc:
                log.info("no link for the page %s: %s", key, exc)
                return None
            if found is not None:
                return found
            if self._monotonic() + LOOKUP_EVERY >= give_up:
                log.info("no PagerDuty incident for %s yet; the card goes without a link", key)
                return None
            await asyncio.sleep(LOOKUP_EVERY)

    async def _oncall_of(self, incident: dict[str, Any]) -> str:
        """Who is on call for the incident's escalation policy (cached), as one line."""
        policy = incident.get("escalation_policy")
        policy_id = policy.get("id") if isinstance(policy, dict) else None
        if not policy_id or self._oncall is None:
            return ""
        try:
            return on_call_line(await self._oncall.who(str(policy_id)))
        except (TransientError, PermanentError) as exc:
            log.info("on-call lookup for %s failed: %s", policy_id, exc)
            return ""

    async def note(self, key: str, text: str) -> None:
        """Add a note to the PagerDuty incident of ``key`` (needs REST and, with an
        account-level token, ``PAGERDUTY_FROM_EMAIL``). The bot's notes are marked so their
        ``incident.annotated`` webhooks are not taken back in as comments."""
        if self._rest is None:
            raise PermanentError(f"notes need {ENV_PREFIX}API_TOKEN")
        found = await self._find_incident(key, self._monotonic() + self._deadline)
        if found is None:
            raise NotFound(f"no PagerDuty incident for {key}")
        await call(
            self._rest.jpost,
            f"/incidents/{found['id']}/notes",
            json={"note": {"content": f"{NOTE_MARK} {text}"[:25_000]}},
            what="note",
            deadline=self._deadline,
            secrets=self._secrets,
        )

    async def _find_incident(self, key: str, give_up: float) -> dict[str, Any] | None:
        assert self._rest is not None
        left = max(0.1, min(self._deadline, give_up - self._monotonic()))
        body = await call(
            self._rest.jget,
            "/incidents",
            params={"incident_key": key, "date_range": "all", "limit": 1},
            what="incident lookup",
            deadline=left,
            secrets=self._secrets,
        )
        incidents = body.get("incidents") if isinstance(body, dict) else None
        if isinstance(incidents, list) and incidents and isinstance(incidents[0], dict):
            return incidents[0]
        return None

    # internals -------------------------------------------------------------------------------

    def _routing_key(self, channel: str) -> str:
        key = self.settings.routing_key_for(channel)
        if key is None:
            known = ", ".join(self.settings.channels) or "none"
            raise PermanentError(
                f"no PagerDuty routing key for channel {channel!r} (configured: {known}); "
                f"add it to {ENV_PREFIX}ROUTING_KEYS"
            )
        return key

    def _client(self, routing_key: str) -> pagerduty.EventsApiV2Client:
        client = self._clients.get(routing_key)
        if client is None:
            client = events_client(self.settings, routing_key, self._verify)
            self._clients[routing_key] = client
        return client

    async def _spend(self, routing_key: str, channel: str) -> None:
        bucket = self._budgets.get(routing_key)
        if bucket is None:
            rate, burst = self.settings.budget()
            bucket = self._budgets[routing_key] = TokenBucket(rate, burst, self._monotonic)
        waited = 0.0
        while (wait := bucket.try_take()) > 0:
            if waited + wait > MAX_BUDGET_WAIT:
                raise TransientError(
                    f"PagerDuty events for channel {channel!r} are over "
                    f"{self.settings.events_per_minute}/min ({ENV_PREFIX}EVENTS_PER_MINUTE)",
                    retry_after=wait,
                )
            await asyncio.sleep(wait)
            waited += wait

    async def _send(self, channel: str, action: str, key: str, body: dict[str, Any]) -> None:
        routing_key = self._routing_key(channel)
        await self._spend(routing_key, channel)
        client = self._client(routing_key)
        answered = await call(
            client.send_event,
            action,
            dedup_key=key,
            **body,
            what=f"{action} of {key}",
            deadline=self._deadline,
            secrets=self._secrets,
        )
        if answered != key:
            log.warning("PagerDuty answered dedup key %r to the %s of %r", answered, action, key)
        log.debug("PagerDuty accepted the %s of %s (channel %s)", action, key, channel)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        if self._rest is not None:
            self._rest.close()
        if self._oncall is not None:
            self._oncall.close()
