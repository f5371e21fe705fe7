"""One fault switch shared by the loopback fakes: for a while, answer every request with a
5xx, a 429 with ``Retry-After``, hang past the client's timeout, or reset the connection; then
recover by itself.

    fake.faults.set(Fault.THROTTLE, seconds=3, retry_after=1)

Off by default, and off again once ``seconds`` have passed (or after :meth:`FaultSwitch.clear`):
the fake then answers exactly as it did before. ``served`` counts the requests each kind of
fault answered (``hits``: when), ``windows`` records every (kind, start, end) on the monotonic
clock, so a test can tell when a dependency failed and when it came back.

Aimed faults: :meth:`FaultSwitch.arm` starts a fault when a given request arrives (the next
``chat.postMessage``, say) and sets an event, so a test can act at exactly that moment (kill
the bot while that request hangs) and the request itself gets the fault:

    received = fake.faults.arm("chat.postMessage", Fault.HANG, seconds=10)
    received.wait(5); bot.kill(); fake.faults.clear()

The ``http.server`` fakes mix :class:`FaultyHandler` into their request handler; the aiohttp
fakes add :func:`middleware` to their application.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiohttp import web

HANG_CAP_S = 120.0  # a hang never outlives this, whatever the switch says


class Fault(StrEnum):
    ERROR = "5xx"  # 503 Service Unavailable
    THROTTLE = "429"  # 429 Too Many Requests with Retry-After
    HANG = (
        "hang"  # read the request, never answer until the fault is over (or cleared), then hang up
    )
    REFUSE = "refuse"  # reset the connection (RST) instead of answering


@dataclass(frozen=True)
class Window:
    kind: Fault
    start: float
    end: float


@dataclass
class FaultSwitch:
    served: Counter[Fault] = field(default_factory=Counter)
    windows: list[Window] = field(default_factory=list)
    hits: list[tuple[float, Fault, str]] = field(default_factory=list)  # (monotonic, kind, path)
    retry_after: float = 1.0
    # extra headers per kind (an AWS fake's ``x-amzn-ErrorType``, so its SDK reads the error)
    headers: dict[Fault, dict[str, str]] = field(default_factory=dict)
    _armed: list[tuple[str, Fault, float, threading.Event]] = field(default_factory=list)
    _kind: Fault | None = None
    _until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, kind: Fault | str, seconds: float, retry_after: float = 1.0) -> None:
        """Answer every request with ``kind`` for ``seconds`` from now."""
        if seconds <= 0:
            raise ValueError(f"fault duration must be positive, got {seconds}")
        now = time.monotonic()
        with self._lock:
            self._kind = Fault(kind)
            self._until = now + seconds
            self.retry_after = retry_after
            self.windows.append(Window(self._kind, now, self._until))

    def arm(self, path_part: str, kind: Fault | str, seconds: float) -> threading.Event:
        """Start ``kind`` for ``seconds`` when the next request whose path contains
        ``path_part`` arrives (that request included); the event is set at that moment."""
        if seconds <= 0:
            raise ValueError(f"fault duration must be positive, got {seconds}")
        received = threading.Event()
        with self._lock:
            self._armed.append((path_part, Fault(kind), seconds, received))
        return received

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    def _trigger(self, path: str) -> None:
        with self._lock:
            found = next((a for a in self._armed if a[0] in path), None)
            if found is None:
                return
            self._armed.remove(found)
        _, kind, seconds, received = found
        self.set(kind, seconds, self.retry_after)
        received.set()

    def clear(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._kind is not None and self.windows and self.windows[-1].end > now:
                last = self.windows[-1]
                self.windows[-1] = Window(last.kind, last.start, now)
            self._kind = None

    def active(self) -> Fault | None:
        with self._lock:
            if self._kind is not None and time.monotonic() >= self._until:
                self._kind = None
            return self._kind

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic()) if self._kind else 0.0

    def take(self, path: str = "") -> Fault | None:
        """The fault the request for ``path`` gets (counted), or None."""
        if self._armed:
            self._trigger(path)
        kind = self.active()
        if kind is not None:
            with self._lock:
                self.served[kind] += 1
                self.hits.append((time.monotonic(), kind, path))
        return kind

    def status(self, kind: Fault) -> tuple[int, dict[str, str]]:
        extra = self.headers.get(kind, {})
        if kind is Fault.THROTTLE:
            return 429, {"Retry-After": f"{self.retry_after:g}", **extra}
        return 503, dict(extra)

    def hang_for(self) -> float:
        return min(HANG_CAP_S, self.remaining())

    def hanging(self, since: float) -> bool:
        """Whether a request held since ``since`` (monotonic) should still hang: until the
        fault ends or is cleared, and never past :data:`HANG_CAP_S`."""
        return self.active() is Fault.HANG and time.monotonic() - since < HANG_CAP_S


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultyHandler(BaseHTTPRequestHandler):
    """Mix in before ``BaseHTTPRequestHandler``; the server carries ``faults`` (a
    :class:`FaultSwitch`). A faulted request never reaches the fake's own routes."""

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        switch: FaultSwitch | None = getattr(self.server, "faults", None)
        kind = switch.take(self.path) if switch is not None else None
        if kind is None or switch is None:
            return True
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if kind is Fault.REFUSE:
            reset(self.connection)
            return False
        if kind is Fault.HANG:
            since = time.monotonic()
            while switch.hanging(since):
                time.sleep(0.02)
            reset(self.connection)
            return False
        status, headers = switch.status(kind)
        body = json.dumps({"message": f"fault injected: {kind.value}"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        return False


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(switch: FaultSwitch, prefix: str = "/") -> Any:
    """aiohttp middleware: requests under ``prefix`` get the switch's fault while it is on."""

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(prefix):
            return await handler(request)
        kind = switch.take(request.path)
        if kind is None:
            return await handler(request)
        await request.read()
        if kind in (Fault.REFUSE, Fault.HANG):
            if kind is Fault.HANG:
                since = time.monotonic()
                while switch.hanging(since):  # noqa: ASYNC110  the switch is thread-side
                    await asyncio.sleep(0.02)
            transport = request.transport
            if transport is not None:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                transport.abort()
            raise asyncio.CancelledError  # nothing is written on a reset connection
        status, headers = switch.status(kind)
        return web.json_response(
            {"ok": False, "error": "fault_injected", "fault": kind.value},
            status=status,
            headers=headers,
        )

    return faults
