"""Turns for SQLite's one writer among this process's threads, first come, first served.

SQLite lets one transaction write at a time and makes the others wait in its busy handler,
which sleeps and polls (up to 100 ms a time): a thread that commits and begins again at once
gets the lock back before a waiting one wakes, so a long run of writes (a storm's pushes being
applied) starves the card posts and button presses waiting beside it. Here every write
transaction takes a turn in arrival order when it issues its first write, which is when the
driver begins SQLite's transaction, and gives it back when it commits or rolls back.

Only this process's threads take turns; another process still meets SQLite's busy handler.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_HELD = "write_turn"
#: a turn not given within this long is not waited for: SQLite's own busy handler decides
WAIT = 30.0


class WriteTurns:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._queue: deque[threading.Event] = deque()

    def take(self, wait: float = WAIT) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            mine = threading.Event()
            self._queue.append(mine)
        if mine.wait(wait):
            return True
        with self._mutex:
            if mine.is_set():  # handed over as the wait ended
                return True
            self._queue.remove(mine)
        log.warning("sqlite: no write turn within %.0fs; writing without one", wait)
        return False

    def give(self) -> None:
        with self._mutex:
            if self._queue:
                self._queue.popleft().set()  # straight to the next: nobody jumps the queue
            else:
                self._held = False


def take_turns(engine: Engine) -> WriteTurns:
    """Make ``engine``'s write transactions take turns (a SQLite engine)."""
    turns = WriteTurns()

    @event.listens_for(engine, "before_cursor_execute")
    def _first_write(
        conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        info = conn.connection.info  # the database connection's: outlives this Connection
        if info.get(_HELD) or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        info[_HELD] = turns.take()

    def _done(info: dict[str, Any]) -> None:
        if info.pop(_HELD, False):
            turns.give()

    @event.listens_for(engine, "commit")
    def _committed(conn: Any) -> None:
        _done(conn.connection.info)

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn: Any) -> None:
        _done(conn.connection.info)

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi: Any, record: Any) -> None:
        _done(record.info)  # returned to the pool without commit or rollback (reset)

    @event.listens_for(engine, "invalidate")
    def _invalidated(_dbapi: Any, record: Any, _exc: Any) -> None:
        _done(record.info)

    return turns
