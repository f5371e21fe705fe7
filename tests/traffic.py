"""Traffic against a :class:`~tests.cluster.Cluster`: bursts of 5xx events and "acknowledge"
presses from a thread until stopped, as the failover bench and the chaos storm send them."""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tests.cluster import Cluster


class Traffic:
    """Bursts and clicks from a thread until stopped."""

    def __init__(
        self,
        bots: Cluster,
        every: float = 1.0,
        attempts: int = 5,
        seed: int = 7,
        pause: float = 0.2,
    ) -> None:
        self.bots = bots
        self.every = every
        self.clicked: list[str] = []
        self.click_errors = 0
        self.failures: list[tuple[str, str]] = []  # (service, what a failed press got)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._rng = random.Random(seed)
        self.attempts, self.pause = attempts, pause
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.bots.burst()
            self._click()

    def click_now(self) -> str | None:
        """Acknowledge the oldest incident not clicked yet, from this thread: the service
        clicked, or None. Counted with the others."""
        with self._lock:
            found = self._next()
        if found is None:
            return None
        self._press(*found)
        return found[0]

    def _next(self) -> tuple[str, int] | None:
        opened = {row.service: row.id for row in self.bots.incidents()}
        todo = [s for s in self.bots.bursts if s in opened and s not in self.clicked]
        if not todo:
            return None
        self.clicked.append(todo[0])
        return todo[0], opened[todo[0]]

    def _click(self) -> None:
        """Acknowledge the oldest incident not clicked yet."""
        with self._lock:
            found = self._next()
        if found is not None:
            self._press(*found)

    def _press(self, service: str, incident_id: int) -> None:
        for _ in range(self.attempts):  # a load balancer retrying until a replica answers
            if self._post(incident_id, service):
                return
            self.click_errors += 1
            if self._stop.is_set():
                return
            time.sleep(self.pause)

    def _post(self, incident_id: int, service: str) -> bool:
        live = self.bots.alive
        if not live:
            self.failures.append((service, "no bot alive"))
            return False
        try:
            response = self._rng.choice(live).api.post(
                f"/api/v1/incidents/{incident_id}/commands",
                json={"command": "acknowledge"},
                headers={"Idempotency-Key": f"click-{service}"},
                timeout=5.0,
            )
        except httpx.HTTPError as exc:
            self.failures.append((service, type(exc).__name__))
            return False
        if response.status_code != 200:
            self.failures.append((service, f"{response.status_code} {response.text[:120]}"))
        return response.status_code == 200
