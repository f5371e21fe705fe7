"""Which of our pages PagerDuty grouped into one of its incidents.

With alert grouping (intelligent, time-based or content-based) PagerDuty adds the events of
several dedup keys to one incident as *alerts*: the incident's ``incident_key`` is the first
alert's key only. Its webhooks carry the incident, so to follow it every grouped page is needed:
``GET /incidents/{id}/alerts`` lists the alerts, each with its ``alert_key`` (the dedup key we
sent). Needs ``PAGERDUTY_API_TOKEN``; without it only the first page is known.
"""

from __future__ import annotations

import logging
import ssl

from bot.errors import PermanentError, TransientError
from integrations.pagerduty.clients import call, rest_client
from integrations.pagerduty.settings import PagerDutySettings

log = logging.getLogger(__name__)
PAGE_SIZE = 100
MAX_PAGES = 10  # 1,000 alerts: past that, PagerDuty's own incident view gives up too


class AlertKeys:
    """The dedup keys of a PagerDuty incident's alerts, over the REST API."""

    def __init__(self, settings: PagerDutySettings, verify: ssl.SSLContext | bool) -> None:
        self._secrets = settings.secret_values()
        self._deadline = settings.timeout
        self._rest = rest_client(settings, verify) if settings.rest_enabled else None

    @property
    def enabled(self) -> bool:
        return self._rest is not None

    async def of(self, incident_id: str, deadline: float) -> list[str]:
        """Every alert key of PagerDuty incident ``incident_id`` (empty without REST, or when
        PagerDuty cannot say within ``deadline`` seconds: the caller falls back to the
        incident's own key)."""
        if self._rest is None:
            return []
        keys: list[str] = []
        try:
            for page in range(MAX_PAGES):
                body = await call(
                    self._rest.jget,
                    f"/incidents/{incident_id}/alerts",
                    params={"limit": PAGE_SIZE, "offset": page * PAGE_SIZE},
                    what=f"alerts of {incident_id}",
                    deadline=min(self._deadline, deadline),
                    secrets=self._secrets,
                )
                alerts = body.get("alerts") if isinstance(body, dict) else None
                if not isinstance(alerts, list):
                    break
                for alert in alerts:
                    key = alert.get("alert_key") if isinstance(alert, dict) else None
                    if isinstance(key, str) and key:
                        keys.append(key)
                if not body.get("more"):
                    break
        except (TransientError, PermanentError) as exc:
            log.info("alerts of PagerDuty incident %s not listed: %s", incident_id, exc)
        return list(dict.fromkeys(keys))

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
