"""Pause the cyclic garbage collector around short, allocation-heavy batch work.

A storm run builds and drops hundreds of thousands of small objects in well under a second;
reference counting frees them, but the cyclic collector still walks every young object again
and again (measured: a quarter of a 10,000-group run). Pausing it for the duration of one
evaluation or one ingest transaction, and letting it run normally in between, keeps memory
bounded and the run fast. Nesting and concurrent use from several threads are safe: the
collector comes back when the last user leaves.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_users = 0
_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    global _users, _was_enabled
    with _lock:
        if _users == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _was_enabled:
                gc.enable()
