"""From a stored document to the numbers the index compares: hashed term counts and TF-IDF.

Terms are hashed into ``FEATURES`` slots exactly as scikit-learn's ``HashingVectorizer``
(``alternate_sign=False``) does, so there is no vocabulary to keep or grow; the hash of a term
is cached, since the same few thousand terms come back in every incident. Weights are those of
``TfidfTransformer(smooth_idf=True, sublinear_tf=True)``: ``idf = ln((1 + n) / (1 + df)) + 1``
and ``1 + ln(count)`` per term, rows l2-normalised. Terms found in more than ``MAX_DF`` of the
documents (once there are ``MIN_DOCS_FOR_MAX_DF``) get no weight: they tell incidents apart
little. This module needs numpy and scikit-learn (the ``ml`` extra); :mod:`bot.similar.index`
checks that they are installed before using it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

FEATURES = 2**20
MAX_DF = 0.5
MIN_DOCS_FOR_MAX_DF = 20
_CACHE_MAX = 500_000  # distinct terms whose hash is kept (free RCA text can grow this)

Ints = npt.NDArray[np.integer[Any]]
Floats = npt.NDArray[np.float64]


@functools.cache
def _murmurhash3_32() -> Callable[..., Any]:
    """scikit-learn's hash, imported when first needed (the import takes a second: every
    ``run_bot.py`` command would pay it)."""
    from sklearn.utils import murmurhash3_32

    return murmurhash3_32


def feature(term: str) -> int:
    """The slot of ``term``: ``abs(murmurhash3_32(term)) % FEATURES``, as scikit-learn does."""
    h = int(_murmurhash3_32()(term, seed=0))
    if h == -(2**31):
        return (2**31 - 1 - (FEATURES - 1)) % FEATURES
    return abs(h) % FEATURES


class Hasher:
    """Term counts of a document (space-separated terms) as sorted slots and counts."""

    def __init__(self) -> None:
        self._slots: dict[str, int] = {}

    def counts(self, doc: str) -> tuple[Ints, Floats]:
        slots = self._slots
        if len(slots) > _CACHE_MAX:
            slots.clear()
        terms = Counter(doc.split())
        try:
            found = np.fromiter(map(slots.__getitem__, terms), dtype=np.int32, count=len(terms))
        except KeyError:  # a term not seen yet
            for term in terms.keys() - slots.keys():
                slots[term] = feature(term)
            found = np.fromiter(map(slots.__getitem__, terms), dtype=np.int32, count=len(terms))
        counts = np.fromiter(terms.values(), dtype=np.float64, count=len(terms))
        order = np.argsort(found, kind="stable")
        found, counts = found[order], counts[order]
        if len(found) > 1 and not (found[1:] != found[:-1]).all():  # two terms, one slot
            found, first = np.unique(found, return_index=True)
            counts = np.add.reduceat(counts, first)
        return found, counts


def idf(df: npt.NDArray[Any], n: float) -> Floats:
    """Inverse document frequency per slot from document frequencies over ``n`` documents;
    0 for slots left out because they are in too many documents."""
    weights: Floats = np.log((1.0 + n) / (1.0 + df)) + 1.0
    if n >= MIN_DOCS_FOR_MAX_DF:
        weights[df > MAX_DF * n] = 0.0
    return weights


def weigh(slots: Ints, counts: Floats, idf_of: Floats, lengths: Ints | None = None) -> Floats:
    """TF-IDF weights of term counts, l2-normalised per row: the rows follow one another,
    ``lengths`` entries each (one row when None). A row left with no weight stays all zeros."""
    w: Floats = (1.0 + np.log(counts)) * idf_of[slots]
    if lengths is None:
        norm = float(np.sqrt(np.dot(w, w)))
        return w / norm if norm > 0 else w
    norms = np.sqrt(row_sums(w * w, lengths))
    norms[norms == 0] = 1.0
    out: Floats = w / np.repeat(norms, lengths)
    return out


def row_sums(values: Floats, lengths: Ints) -> Floats:
    """Sums of consecutive runs of ``values``, ``lengths`` long each (0 for an empty run)."""
    sums: Floats = np.zeros(len(lengths))
    nonempty = lengths > 0
    if nonempty.any():
        starts = np.cumsum(lengths) - lengths
        sums[nonempty] = np.add.reduceat(values, starts[nonempty])
    return sums


__all__ = ["FEATURES", "MAX_DF", "Hasher", "feature", "idf", "row_sums", "weigh"]
