"""Refused Teams requests (a missing, malformed or forged Bot Connector token) in the audit chain.

At most one entry a minute per kind of refusal and address, so a flood of forged requests cannot
flood the chain; the token itself is never recorded.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.ports import Clock
from bot.store import audit
from bot.throttle import Throttle

log = logging.getLogger(__name__)


def token_problem(exc: BaseException) -> tuple[str, str]:
    """(kind, reason) for a failed token check, in words that never quote the token."""
    if isinstance(exc, KeyError):
        key = str(exc.args[0]) if exc.args else "?"
        return "token_header", f"the token's header has no {key!r} (a signing key id is required)"
    return "token_invalid", f"the token did not validate ({type(exc).__name__})"


class Refusals:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._throttle = Throttle()

    async def record(self, peer: str, kind: str, reason: str, route: str) -> None:
        if not self._throttle.due((kind, peer)):
            return
        entry = {
            "at": self.clock.now(),
            "actor": "anonymous",
            "surface": "teams",
            "action": "auth_refused",
            "result": "refused",
            "reason": reason[:500],
            "detail": f"POST {route} from {peer}",
            "data": {"kind": kind},
        }
        await asyncio.to_thread(self._write, entry)

    def _write(self, entry: dict[str, object]) -> None:
        try:
            with self.engine.begin() as conn:
                audit.append(conn, [entry])
        except SQLAlchemyError as exc:
            log.warning("could not audit a refused Teams request: %s", exc)
