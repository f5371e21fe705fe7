"""Hypothesis strategies for outside input: recorded payloads with fields replaced or removed."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: bounded, deterministic: every parser test runs the same examples on every machine
#: (FUZZ_EXAMPLES=500 for a longer hunt by hand)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=6,
)

Path = tuple[str | int, ...]


def paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every place in a JSON document, the root first."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def _set(doc: Any, path: Path, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, original: Any, changes: int = 3) -> Any:
    """``original`` with 1..``changes`` places replaced by any JSON or removed."""
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, changes))):
        places = list(paths(doc))
        # the root is replaced rarely: a whole different document says little about the parser
        path = draw(st.sampled_from(places[1:] if len(places) > 1 else places))
        doc = _set(doc, path, draw(JSON), draw(st.booleans()))
    return doc


#: log records that name an input refused before any handler ran (the SDK logs, we answer 400)
EXPECTED = {"microsoft_agents.activity.activity": "Validation error for Activity"}


def escaped(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback: an exception that escaped a handler."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info is not None
        and r.levelno >= logging.ERROR
        and not r.getMessage().startswith(EXPECTED.get(r.name, "\0"))
    ]
