"""Per-series baselines of the ``anomaly`` rule type, each stored as a small JSON value.

* :class:`MadBaseline`: a bounded ring of recent bucket values; the score of a value is its
  modified z-score ``(x - median) / (1.4826 * MAD)`` (the mean absolute deviation, scaled,
  when more than half the values are equal and the MAD is zero).
* :class:`EwmaBaseline`: an exponentially weighted mean and variance; the score is
  ``(x - mean) / stdev``.
* :class:`ForestBaseline`: a bounded ring of recent metric vectors, scored by scikit-learn's
  ``IsolationForest`` trained on the ring (fixed ``random_state``: same data, same scores). The
  score is the anomaly score of the original paper, from 0 to 1: typical buckets score about
  0.45 and rarely above 0.7; a vector far outside everything remembered scores 0.7 to 0.8 (the
  trees only split within the range they were trained on).

A score is ``inf`` when the history has no spread at all and the value differs from it.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
from collections.abc import Sequence
from typing import Any

MAD_SCALE = 1.4826  # makes the MAD of normally distributed data estimate its standard deviation
MEAN_AD_SCALE = 1.2533  # the same for the mean absolute deviation
FOREST_TREES = 100
FOREST_SEED = 0


def sklearn_available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def _z(value: float, center: float, spread: float) -> float:
    if spread > 0:
        return (value - center) / spread
    if value == center:
        return 0.0
    return math.copysign(math.inf, value - center)


def _compact(value: float) -> float:
    return float(f"{value:.9g}")


class MadBaseline:
    def __init__(self, state: dict[str, Any] | None, size: int) -> None:
        self.ring: list[float] = list((state or {}).get("ring", []))[-size:]
        self.size = size

    def __len__(self) -> int:
        return len(self.ring)

    def score(self, value: float) -> tuple[float, float]:
        """(the baseline, the value's score against it)."""
        center = statistics.median(self.ring)
        deviations = [abs(v - center) for v in self.ring]
        spread = MAD_SCALE * statistics.median(deviations)
        if spread == 0:
            spread = MEAN_AD_SCALE * statistics.fmean(deviations)
        return center, _z(value, center, spread)

    def add(self, value: float) -> None:
        self.ring.append(_compact(value))
        del self.ring[: -self.size]

    def dump(self) -> dict[str, Any]:
        return {"ring": self.ring}


class EwmaBaseline:
    def __init__(self, state: dict[str, Any] | None, alpha: float) -> None:
        state = state or {}
        self.n: int = state.get("n", 0)
        self.mean: float = state.get("mean", 0.0)
        self.var: float = state.get("var", 0.0)
        self.alpha = alpha

    def __len__(self) -> int:
        return self.n

    def score(self, value: float) -> tuple[float, float]:
        return self.mean, _z(value, self.mean, math.sqrt(self.var))

    def add(self, value: float) -> None:
        if self.n == 0:
            self.mean, self.var = value, 0.0
        else:
            diff = value - self.mean
            step = self.alpha * diff
            self.mean += step
            self.var = (1 - self.alpha) * (self.var + diff * step)
        self.n += 1

    def dump(self) -> dict[str, Any]:
        return {"n": self.n, "mean": _compact(self.mean), "var": _compact(self.var)}


class ForestBaseline:
    def __init__(self, state: dict[str, Any] | None, size: int, width: int) -> None:
        rows = (state or {}).get("ring", [])
        self.ring: list[list[float]] = [row for row in rows if len(row) == width][-size:]
        self.size = size
        self._model: Any = None

    def __len__(self) -> int:
        return len(self.ring)

    def score(self, vector: Sequence[float]) -> tuple[list[float], float]:
        """(the per-metric median of the history, the vector's anomaly score)."""
        import numpy as np  # the optional 'ml' extra: imported only when a rule uses it

        if self._model is None:  # trained once per run, on the history the run started with
            from sklearn.ensemble import IsolationForest

            self._model = IsolationForest(n_estimators=FOREST_TREES, random_state=FOREST_SEED)
            self._model.fit(np.asarray(self.ring, dtype=float))
        score = -float(self._model.score_samples(np.asarray([vector], dtype=float))[0])
        center = [statistics.median(column) for column in zip(*self.ring, strict=True)]
        return center, score

    def add(self, vector: Sequence[float]) -> None:
        self.ring.append([_compact(v) for v in vector])
        del self.ring[: -self.size]

    def dump(self) -> dict[str, Any]:
        return {"ring": self.ring}
