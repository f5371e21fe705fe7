"""Setup shared by the benchmark scripts: isolated databases, child runs, figures.

Importing this module puts the project root on ``sys.path``, so a script can be started as
``python bench/<name>.py`` from anywhere.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONSOLE_URL = "http://127.0.0.1:8080"
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class StepClock:
    """A clock the benchmark moves by hand (each detector run gets a fresh window)."""

    def __init__(self, start: datetime = START) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


def sqlite_url(folder: str) -> str:
    return f"sqlite:///{Path(folder) / 'bot.db'}"


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema of the database at ``url``, dropped after."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: str, args: Sequence[str], timeout: float = 900) -> dict[str, Any]:
    """Run ``script --child args…`` in a fresh interpreter; return its last stdout line (JSON)."""
    done = subprocess.run(
        [sys.executable, script, "--child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{Path(script).name}: a run failed (exit {done.returncode})")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"{Path(script).name}: a run printed no result")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def emit(result: dict[str, Any]) -> None:
    """The machine-readable result: exactly one JSON line, printed last."""
    print(json.dumps(result, separators=(", ", ": ")), flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
    return float(ordered[rank - 1])


def spread(values: Sequence[float], unit: str = "", digits: int = 3) -> str:
    """``median (min … max)`` for a line of the report."""
    fmt = f"{{:.{digits}f}}"
    lo, mid, hi = (fmt.format(v) for v in (min(values), median(values), max(values)))
    return f"{mid}{unit} (min {lo}{unit}, max {hi}{unit})"
