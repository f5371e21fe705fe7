"""The HTTP handler splunklib sends requests through, with a way to abort a search's requests.

splunklib's own handler keeps no reference to its connections, so a thread blocked reading an
export stream can only wait for the socket timeout. This handler does what splunklib's does
(one connection per request, ``Connection: Close``, TLS with an ``ssl.SSLContext``) and also
remembers the socket of every request made while a :class:`Abort` is bound to the thread, so
the event loop can shut those sockets down when a search runs out of time.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from splunklib.binding import ResponseReader

USER_AGENT = "incident-chatops-bot"


class Aborted(Exception):
    """The search's requests were shut down from another thread (its time ran out)."""


class Abort:
    """Lets another thread stop one search: a flag plus the sockets the search has open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._event = threading.Event()
        self.job: Any = None  # the normal job (splunklib ``Job``), once created

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) when an abort was requested."""
        return self._event.wait(seconds)

    def check(self) -> None:
        if self._event.is_set():
            raise Aborted("search aborted")

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            if self._event.is_set():
                _shutdown(sock)
            self._sockets.append(sock)

    def __call__(self) -> None:
        """Request the abort and shut down every socket the search has open."""
        with self._lock:
            self._event.set()
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    """Wake a thread blocked on ``sock`` (a TLS socket too: its TLS state is left alone)."""
    with suppress(OSError):  # already closed: nothing left to stop
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def tls_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    """Verification on: the system CAs, or only ``ca_file`` when given. Off: no checks at all."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class Transport:
    """A splunklib HTTP handler (``client.connect(handler=…)``): connecting may take up to
    ``connect_timeout`` seconds, then each read up to ``timeout``."""

    def __init__(
        self, context: ssl.SSLContext | None, timeout: float, connect_timeout: float = 10.0
    ) -> None:
        self._context = context
        self._timeout = timeout
        self._connect_timeout = min(connect_timeout, timeout)
        self._local = threading.local()

    @contextmanager
    def bound(self, abort: Abort) -> Iterator[Abort]:
        """Track the sockets of requests this thread makes inside the block."""
        previous = getattr(self._local, "abort", None)
        self._local.abort = abort
        try:
            yield abort
        finally:
            self._local.abort = previous

    def __call__(self, url: str, message: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        abort: Abort | None = getattr(self._local, "abort", None)
        if abort is not None:
            abort.check()
        connection = self._connection(parts.scheme, host, port)
        body = message.get("body", "")
        headers = {
            "Content-Length": str(len(body)),
            "Host": host,
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Connection": "Close",
        }
        for key, value in message["headers"]:
            headers[key] = value
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self._timeout)
                if abort is not None:
                    abort.track(connection.sock)
            connection.request(message.get("method", "GET"), path, body, headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException):
            if abort is not None and abort.requested:
                raise Aborted("search aborted") from None
            raise
        finally:
            # The response keeps its own reference to the socket until its body is read.
            connection.close()
        return {
            "status": response.status,
            "reason": response.reason,
            "headers": response.getheaders(),
            "body": ResponseReader(response),
        }

    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=self._connect_timeout, context=self._context
            )
        raise ValueError(f"unsupported scheme: {scheme}")
