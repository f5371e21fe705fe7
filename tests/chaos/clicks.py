"""Clicks from two places in the storm: :class:`MixedTraffic` acknowledges every other incident
from its Teams card (an ``Action.Execute`` invoke to a bot's ``/api/messages``, as Teams sends
it) and the rest through the API, as :class:`~tests.traffic.Traffic` does. An incident whose
card has not reached Teams yet is acknowledged through the API (nobody presses a card they
cannot see).

A press that gets no answer is pressed again, by Teams with the same activity id (so the same
idempotency key). :func:`applied_acks` reads the audit trail: how many acknowledgements each
incident got applied (one per click: more is a click doubled).
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx
from sqlalchemy import select

from bot.store.repo import AUDIT, INCIDENTS
from tests.cluster import Cluster
from tests.traffic import Traffic

VERB = "acknowledge"


class MixedTraffic(Traffic):
    def __init__(self, bots: Cluster, *args: object, **kwargs: object) -> None:
        super().__init__(bots, *args, **kwargs)  # type: ignore[arg-type]
        self.by_teams: list[str] = []  # services acknowledged from their Teams card
        self._via: dict[str, bool] = {}  # decided at a service's first press, kept for retries
        self._local = threading.local()

    def click_from_teams(self) -> str | None:
        """Acknowledge the oldest incident not clicked yet from its Teams card (through the
        API if its card is not in Teams yet), from this thread: the service clicked, or None."""
        self._local.force = True
        try:
            return self.click_now()
        finally:
            self._local.force = False

    def _post(self, incident_id: int, service: str) -> bool:
        teams = self.bots.teams
        if service not in self._via:
            forced = getattr(self._local, "force", False)
            wanted = forced or int(service.rsplit("-", 1)[-1]) % 2 == 0
            shown = teams is not None and teams.card_of(incident_id, VERB) is not None
            self._via[service] = wanted and shown
        if teams is None or not self._via[service]:
            return super()._post(incident_id, service)
        live = self.bots.alive
        if not live:
            self.failures.append((service, "no bot alive"))
            return False
        try:
            answer = teams.press(
                self._rng.choice(live).url, incident_id, VERB, f"f:press-{service}"
            )
        except httpx.HTTPError as exc:
            self.failures.append((service, f"teams: {type(exc).__name__}"))
            return False
        if answer is None or answer.status_code != 200:
            got = "no card" if answer is None else f"{answer.status_code} {answer.text[:120]}"
            self.failures.append((service, f"teams: {got}"))
            return False
        self.by_teams.append(service)
        return True


def applied_acks(bots: Cluster) -> Counter[str]:
    """Acknowledgements applied per service, from the audit trail (any surface)."""
    with bots.engine.connect() as conn:
        rows = conn.execute(
            select(INCIDENTS.c.service)
            .select_from(AUDIT.join(INCIDENTS, AUDIT.c.incident_id == INCIDENTS.c.id))
            .where(AUDIT.c.action == VERB, AUDIT.c.result == "applied")
        ).all()
    return Counter(r[0] for r in rows)
