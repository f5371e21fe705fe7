"""An in-memory TF-IDF index of resolved incidents, kept per process and grown as they resolve.

Incidents with the same document (a rule that fires again with the same log templates: the
usual case) share one vector, a *group*, that lists their ids; a lookup scores each group once
and hands out its newest ids first. Vectors are hashed term counts weighted by TF-IDF
(:mod:`bot.similar.vectors`) and kept in an inverted matrix (terms x groups) in single
precision: a lookup takes the rows of the query's terms only and sums them in one sparse
product, so its time grows with how many groups share the query's terms, not with the
vocabulary. The few groups that can rank in the top, given the rounding, are then scored again
in double precision from their counts: the order is that of an exact cosine.

The weights are fitted on the whole set by the first lookup, and refitted in a thread when the
set has grown by a fifth or ``TAIL_MAX`` new groups wait in the tail (a refit reuses the stored
counts; about a second for 100,000 distinct documents): lookups meanwhile answer with the
weights they have. Documents added since the fit are weighted with the fitted IDF (a term never
seen gets the highest weight). The ranking is the cosine similarity of the query against every
incident, best first, ties to the newer incident.

Without scikit-learn the index says so once in the log and every lookup answers nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

REFIT_GROWTH = 1.2  # refit the IDF when the set has grown by a fifth
TAIL_MAX = 512  # or when this many new groups wait in the tail

try:  # the ``ml`` extra
    import numpy as np
    import scipy.sparse as sp

    from bot.similar import vectors

    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the install
    AVAILABLE = False


@dataclass(frozen=True, slots=True)
class Hit:
    incident_id: int
    score: float  # cosine similarity, 0..1


def _nth_largest(values: Any, n: int) -> float:
    """The ``n``-th largest of ``values`` (0 when there are fewer): ``n`` passes of argmax,
    quicker than a partition for the few a lookup wants."""
    taken = []
    found = 0.0
    for _ in range(min(n, len(values))):
        at = int(np.argmax(values))
        found = float(values[at])
        taken.append((at, values[at]))
        values[at] = -np.inf
    for at, value in taken:
        values[at] = value
    return found


@dataclass(frozen=True, slots=True)
class _Fit:
    idf: Any  # per slot
    main: Any  # slots x groups, CSR
    groups: int  # groups covered
    incidents: int  # incidents counted


def _vectors(slots: list[Any], counts: list[Any], idf: Any) -> tuple[Any, Any, Any]:
    """Vectors from term counts with ``idf``: ``(slots, weights, lengths)`` concatenated in the
    order given, each l2-normalised, in double precision."""
    lengths = np.fromiter((len(s) for s in slots), dtype=np.int64, count=len(slots))
    if not slots:
        return np.zeros(0, dtype=np.int32), np.zeros(0), lengths
    rows = np.concatenate(slots)
    columns = np.repeat(np.arange(len(slots), dtype=np.int64), lengths)
    weights = vectors.weigh(rows, np.concatenate(counts).astype(np.float64), idf, columns)
    return rows, weights, lengths


def _matrix(slots: list[Any], counts: list[Any], idf: Any) -> Any:
    """Vectors as a slots x vectors CSR in single precision (half the memory a lookup reads;
    the best are scored again exactly)."""
    rows, weights, lengths = _vectors(slots, counts, idf)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    shape = (vectors.FEATURES, len(lengths))
    csc = sp.csc_matrix((weights.astype(np.float32), rows, indptr), shape=shape)
    csc.eliminate_zeros()
    return csc.tocsr()


@dataclass(slots=True)
class _Refit:
    """Fitting the weights on a snapshot of the groups (vectors never change once added)."""

    slots: list[Any]
    counts: list[Any]
    sizes: Any  # incidents per group
    incidents: int
    fit: _Fit | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> _Fit:
        lengths = np.fromiter((len(s) for s in self.slots), dtype=np.int64, count=len(self.slots))
        rows = np.concatenate(self.slots) if self.slots else np.zeros(0, dtype=np.int32)
        weights = np.repeat(self.sizes.astype(np.float64), lengths)
        df = np.bincount(rows, weights=weights, minlength=vectors.FEATURES)
        idf = vectors.idf(df, float(self.sizes.sum()))
        fit = _Fit(idf, _matrix(self.slots, self.counts, idf), len(self.slots), self.incidents)
        self.fit = fit
        return fit


def _refit_in_thread(job: _Refit) -> None:
    """A refit in its thread: a failure is logged and the old weights stay."""
    try:
        job.run()
    except Exception:  # a thread's last word: logged, the lookups go on
        log.exception("similar incidents: refitting the weights failed")
    finally:
        job.done.set()


class SimilarIndex:
    """Documents keyed by incident id; adding an id again replaces its document."""

    def __init__(self) -> None:
        self._warned = False
        self._group_of: dict[int, int] = {}  # incident id -> group
        self._doc_group: dict[bytes, int] = {}  # digest (128 bits) of the document -> group
        self._slots: list[Any] = []  # per group: sorted term slots (int32)
        self._counts: list[Any] = []  # per group: their counts (uint32)
        self._members: list[list[int]] = []  # per group: incident ids, ascending
        self._sizes: Any = None  # per group: len(members), numpy (grown by doubling)
        self._idf: Any = None  # per slot, from the last fit
        self._fitted_n = 0  # incidents when the weights were fitted
        self._fitted_groups = 0  # groups covered by the fitted matrix
        self._main: Any = None  # slots x fitted groups, CSR, columns l2-normalised
        self._tail: Any = None  # slots x groups added since the fit (built on demand)
        self._job: _Refit | None = None  # a refit under way in a thread
        if AVAILABLE:
            self._hasher = vectors.Hasher()
            self._sizes = np.zeros(1024, dtype=np.int64)

    @property
    def available(self) -> bool:
        if not AVAILABLE and not self._warned:
            self._warned = True
            log.warning(
                "similar incidents are off: scikit-learn is not installed (install the 'ml' extra)"
            )
        return AVAILABLE

    def __len__(self) -> int:
        return len(self._group_of)

    @property
    def groups(self) -> int:
        """Distinct vectors held (incidents with the same document share one)."""
        return len(self._slots)

    def add(self, incident_id: int, doc: str) -> None:
        if not self.available:
            self._group_of[incident_id] = -1
            return
        self._remove(incident_id)
        key = hashlib.blake2b(doc.encode(), digest_size=16).digest()
        group = self._doc_group.get(key)
        if group is None:
            slots, counts = self._hasher.counts(doc)
            group = self._doc_group[key] = len(self._slots)
            self._slots.append(slots)
            self._counts.append(counts.astype(np.uint32))
            self._members.append([])
            if group >= len(self._sizes):
                self._sizes = np.concatenate([self._sizes, np.zeros_like(self._sizes)])
            self._tail = None
        members = self._members[group]
        if not members or incident_id > members[-1]:
            members.append(incident_id)
        else:
            bisect.insort(members, incident_id)
        self._sizes[group] += 1
        self._group_of[incident_id] = group

    def _remove(self, incident_id: int) -> None:
        group = self._group_of.pop(incident_id, None)
        if group is None:
            return
        self._members[group].remove(incident_id)
        self._sizes[group] -= 1

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def _stale(self) -> bool:
        return (
            self._idf is None
            or len(self._group_of) > self._fitted_n * REFIT_GROWTH
            or len(self._slots) - self._fitted_groups >= TAIL_MAX
        )

    def _matrix(self, first: int, last: int) -> Any:
        return _matrix(self._slots[first:last], self._counts[first:last], self._idf)

    def _exact(self, groups: Any, slots: Any, weights: Any) -> Any:
        """Double-precision cosine of the query (sorted ``slots``, ``weights``) and ``groups``."""
        chosen = groups.tolist()
        rows, vector, lengths = _vectors(
            [self._slots[g] for g in chosen], [self._counts[g] for g in chosen], self._idf
        )
        at = np.minimum(np.searchsorted(slots, rows), len(slots) - 1)
        products = np.where(slots[at] == rows, vector * weights[at], 0.0)
        columns = np.repeat(np.arange(len(lengths)), lengths)
        return np.bincount(columns, weights=products, minlength=len(lengths))

    def _snapshot(self) -> _Refit:
        groups = len(self._slots)
        return _Refit(list(self._slots), list(self._counts), self._sizes[:groups].copy(), len(self))

    def _install(self, fit: _Fit) -> None:
        self._idf, self._main = fit.idf, fit.main
        self._fitted_n, self._fitted_groups = fit.incidents, fit.groups
        self._tail = None

    def _refresh(self) -> None:
        """Fit the weights if there are none (the first lookup waits for it); later, refit in
        a thread when the set has grown, lookups answering with the old weights meanwhile."""
        job = self._job
        if job is not None and job.done.is_set():
            self._job = None
            if job.fit is not None:
                self._install(job.fit)
        if self._idf is None:
            self._install(self._snapshot().run())
        elif self._stale() and self._job is None:
            self._job = self._snapshot()
            threading.Thread(
                target=_refit_in_thread, args=(self._job,), name="similar-refit", daemon=True
            ).start()

    def settle(self) -> None:
        """Wait for a refit under way (tests and benchmarks); the next lookup uses it."""
        job = self._job
        if job is not None:
            job.done.wait()

    def _scores(self, slots: Any, weights: Any) -> Any:
        """Cosine score of every group: the rows of the query's slots, summed with its weights."""
        single = weights.astype(np.float32)
        scores = self._main[slots].T @ single
        if len(self._slots) > self._fitted_groups:
            if self._tail is None:
                self._tail = self._matrix(self._fitted_groups, len(self._slots))
            scores = np.concatenate([scores, self._tail[slots].T @ single])
        scores[self._sizes[: len(scores)] == 0] = 0.0  # groups whose incidents all moved
        return scores

    def query(self, doc: str, k: int = 3, exclude: int | None = None) -> list[Hit]:
        """The ``k`` most similar documents (score > 0), best first; ties by the newer id."""
        if not self._group_of or not self.available or k <= 0:
            return []
        self._refresh()
        slots, counts = self._hasher.counts(doc)
        weights = vectors.weigh(slots, counts, self._idf)
        keep = weights > 0
        slots, weights = slots[keep], weights[keep]
        if not len(slots):
            return []
        approx = self._scores(slots, weights)
        want = k + (exclude is not None)  # enough groups to hold k incidents besides `exclude`
        # every group that may rank in the top `want` once scored exactly: single precision
        # errs by less than (terms + 4) epsilons on a sum at most 1, twice that between two
        slack = 2 * (len(slots) + 4) * float(np.finfo(np.float32).eps) + 1e-9
        floor = max(_nth_largest(approx, want) - slack, float(np.finfo(np.float32).tiny))
        found = np.flatnonzero(approx >= floor)
        return self._top(found, self._exact(found, slots, weights), k, want, exclude)

    def _top(self, groups: Any, scores: Any, k: int, want: int, exclude: int | None) -> list[Hit]:
        """The ``k`` best incidents of ``groups`` (exact ``scores``), ties to the newer one."""
        ranked: list[tuple[float, int, float]] = []
        for group, exact in zip(groups.tolist(), scores.tolist(), strict=True):
            if exact <= 0:
                continue
            score = float(exact)
            newest = self._members[group][-want:]
            ranked += [(round(score, 9), i, score) for i in newest if i != exclude]
        ranked.sort(key=lambda hit: (-hit[0], -hit[1]))
        return [Hit(i, score) for _, i, score in ranked[:k]]


__all__ = ["AVAILABLE", "Hit", "SimilarIndex"]
