"""One splunklib ``Service`` shared by the worker threads, connected again after a 401."""

from __future__ import annotations

import logging
import threading
from typing import Any

from splunklib import client

from integrations.splunk.settings import SplunkSettings
from integrations.splunk.transport import Transport

log = logging.getLogger(__name__)


class Session:
    """Connects lazily (a token needs no round trip; a password logs in at
    ``/services/auth/login``). ``generation`` numbers connections, so when several threads see
    the same 401 only the first connects again and the others reuse its connection."""

    def __init__(self, settings: SplunkSettings, transport: Transport) -> None:
        self._settings = settings
        self._transport = transport
        self._lock = threading.Lock()
        self._service: Any = None
        self._generation = 0
        self.connects = 0

    def get(self, stale: int | None = None) -> tuple[Any, int]:
        """The current ``(service, generation)``; connects first when there is none yet, or
        when the current one is generation ``stale`` (it was just rejected)."""
        with self._lock:
            if self._service is None or stale == self._generation:
                self._service = None
                self._service = self._connect()
                self._generation += 1
            return self._service, self._generation

    def _connect(self) -> Any:
        s = self._settings
        kwargs: dict[str, Any] = {
            "host": s.host,
            "port": s.port,
            "scheme": s.scheme,
            "app": s.app,
            "owner": s.owner,
            "autologin": False,
            "handler": self._transport,
        }
        if s.token is not None:
            kwargs["splunkToken"] = s.token.get_secret_value()
        else:
            assert s.password is not None
            kwargs["username"] = s.username
            kwargs["password"] = s.password.get_secret_value()
        self.connects += 1
        log.debug("connecting to Splunk at %s (%s auth)", s.base_url, s.auth_method)
        return client.connect(**kwargs)
