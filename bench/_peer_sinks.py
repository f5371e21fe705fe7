"""The notification sinks of ``peer.py``: Alertmanager's webhook receiver and the loopback
Slack, each recording every group's first notification."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import _common  # noqa: F401 - puts the project root on sys.path

from tests.fakes.slack import FakeSlack


@dataclass
class Seen:
    """First notification time per group name."""

    first: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, name: str, at: float) -> None:
        with self.lock:
            self.first.setdefault(name, at)


class Webhook:
    """Alertmanager's webhook receiver: records each group's first notification."""

    def __init__(self) -> None:
        self.seen = Seen()
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                at = time.monotonic()
                name = json.loads(body).get("groupLabels", {}).get("alertname", "")
                seen.saw(name, at)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlackSink:
    """The loopback Slack: a card post names its group in its title (``G17: storm``)."""

    TITLE = re.compile(r"\b([GP]\d+): (?:storm|probe)")

    def __init__(self) -> None:
        self.fake = FakeSlack().start_in_thread()
        self.seen = Seen()
        self._scanned = 0

    def scan(self) -> None:
        fresh = self.fake.calls[self._scanned :]  # the fake's thread appends meanwhile
        self._scanned += len(fresh)
        for call in fresh:
            if call.method == "chat.postMessage":
                found = self.TITLE.search(json.dumps(call.args))
                if found:
                    self.seen.saw(found.group(1), call.at)

    def close(self) -> None:
        self.fake.stop_thread()
