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
numpy, scipy and scikit-learn (about 60 MiB once imported) are imported when the first incident
is added, not with this module: a bot with no resolved incident never loads them.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

    from bot.similar import vectors

log = logging.getLogger(__name__)

REFIT_GROWTH = 1.2  # refit the IDF when the set has grown by a fifth
TAIL_MAX = 512  # or when this many new groups wait in the tail

# the ``ml`` extra is installed (found, not imported: see _import_numeric)
AVAILABLE = all(find_spec(name) is not None for name in ("numpy", "scipy", "sklearn"))


def _import_numeric() -> None:
    """Bind numpy, scipy.sparse and :mod:`bot.similar.vectors` in this module, on first use."""
    global np, sp, vectors
    import numpy as np
    import scipy.sparse as sp

    from bot.similar import vectors


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


def _matrix(slots: Any, counts: Any, lengths: Any, idf: Any) -> Any:
    """Vectors (term counts, ``lengths`` entries each) weighted with ``idf``, as a slots x
    vectors CSR in single precision: half the memory a lookup reads; the best are scored again
    exactly."""
    weights = vectors.weigh(slots, counts.astype(np.float64), idf, lengths)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    shape = (vectors.FEATURES, len(lengths))
    # the CSC may view ``slots`` (the index's own array): only read here, never changed in
    # place (no eliminate_zeros: the rows of terms with no weight are never looked up)
    return sp.csc_matrix((weights.astype(np.float32), slots, indptr), shape=shape).tocsr()


@dataclass(slots=True)
class _Refit:
    """Fitting the weights on a snapshot of the groups. The snapshot is views of the index's
    arrays: groups are only ever appended past its end, so it needs no copy and no lock."""

    slots: Any  # every group's term slots, one after another
    counts: Any  # their counts
    lengths: Any  # entries per group
    sizes: Any  # incidents per group
    incidents: int
    fit: _Fit | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> _Fit:
        # document frequency per slot, each group counting as many incidents as it holds: a
        # sparse product (it lets lookups in other threads run, where a bincount would not)
        indptr = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=indptr[1:])
        shape = (vectors.FEATURES, len(self.lengths))
        held = sp.csc_matrix((np.ones(len(self.slots)), self.slots, indptr), shape=shape)
        df = held @ self.sizes.astype(np.float64)
        idf = vectors.idf(df, float(self.sizes.sum()))
        main = _matrix(self.slots, self.counts, self.lengths, idf)
        self.fit = _Fit(idf, main, len(self.lengths), self.incidents)
        return self.fit


def _refit_in_thread(job: _Refit) -> None:
    """A refit in its thread: a failure is logged and the old weights stay."""
    try:
        job.run()
    except Exception:  # a thread's last word: logged, the lookups go on
        log.exception("similar incidents: refitting the weights failed")
    finally:
        job.done.set()


def _grown(array: Any, need: int) -> Any:
    """``array`` itself when it holds ``need`` items, else a copy twice as large (never resized
    in place: a snapshot keeps viewing the old one)."""
    if need <= len(array):
        return array
    bigger = np.zeros(max(need, 2 * len(array)), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


class SimilarIndex:
    """Documents keyed by incident id; adding an id again replaces its document."""

    def __init__(self) -> None:
        self._warned = False
        self._group_of: dict[int, int] = {}  # incident id -> group
        self._doc_group: dict[bytes, int] = {}  # digest (128 bits) of the document -> group
        self._groups = 0
        self._members: list[list[int]] = []  # per group: incident ids, ascending
        # numpy arrays, grown by doubling: every group's sorted term slots (int32) and counts
        # (uint32) one after another, where each group starts (and the end), its incidents
        self._slots: Any = None
        self._counts: Any = None
        self._starts: Any = None
        self._sizes: Any = None
        self._idf: Any = None  # per slot, from the last fit
        self._fitted_n = 0  # incidents when the weights were fitted
        self._fitted_groups = 0  # groups covered by the fitted matrix
        self._main: Any = None  # slots x fitted groups, CSR, columns l2-normalised
        self._tail: Any = None  # slots x groups added since the fit (built on demand)
        self._job: _Refit | None = None  # a refit under way in a thread
        self._hasher: Any = None  # with the arrays, when the first document is added

    def _allocate(self) -> None:
        """The hasher and the first arrays (importing numpy and scipy on the first call)."""
        _import_numeric()
        self._hasher = vectors.Hasher()
        self._slots = np.zeros(1 << 16, dtype=np.int32)
        self._counts = np.zeros(1 << 16, dtype=np.uint32)
        self._starts = np.zeros(1025, dtype=np.int64)
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
        return self._groups

    def add(self, incident_id: int, doc: str) -> None:
        if not self.available:
            self._group_of[incident_id] = -1
            return
        if self._hasher is None:
            self._allocate()
        self._remove(incident_id)
        key = hashlib.blake2b(doc.encode(), digest_size=16).digest()
        group = self._doc_group.get(key)
        if group is None:
            group = self._doc_group[key] = self._append(*self._hasher.counts(doc))
        members = self._members[group]
        if not members or incident_id > members[-1]:
            members.append(incident_id)
        else:
            bisect.insort(members, incident_id)
        self._sizes[group] += 1
        self._group_of[incident_id] = group

    def _append(self, slots: Any, counts: Any) -> int:
        group, first = self._groups, int(self._starts[self._groups])
        end = first + len(slots)
        self._slots, self._counts = _grown(self._slots, end), _grown(self._counts, end)
        self._starts, self._sizes = _grown(self._starts, group + 2), _grown(self._sizes, group + 1)
        self._slots[first:end] = slots
        self._counts[first:end] = counts
        self._starts[group + 1] = end
        self._members.append([])
        self._groups += 1
        self._tail = None
        return group

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
            or self._groups - self._fitted_groups >= TAIL_MAX
        )

    def _matrix(self, first: int, last: int) -> Any:
        """Groups ``first..last-1`` with the fitted weights."""
        a, b = int(self._starts[first]), int(self._starts[last])
        lengths = np.diff(self._starts[first : last + 1])
        return _matrix(self._slots[a:b], self._counts[a:b], lengths, self._idf)

    def _exact(self, groups: Any, slots: Any, weights: Any) -> Any:
        """Double-precision cosine of the query (sorted ``slots``, ``weights``) and ``groups``."""
        spans = [(int(self._starts[g]), int(self._starts[g + 1])) for g in groups.tolist()]
        lengths = np.array([b - a for a, b in spans], dtype=np.int64)
        rows = np.concatenate([self._slots[a:b] for a, b in spans] or [self._slots[:0]])
        counts = np.concatenate([self._counts[a:b] for a, b in spans] or [self._counts[:0]])
        vector = vectors.weigh(rows, counts.astype(np.float64), self._idf, lengths)
        at = np.minimum(np.searchsorted(slots, rows), len(slots) - 1)
        products = np.where(slots[at] == rows, vector * weights[at], 0.0)
        return vectors.row_sums(products, lengths)

    def _snapshot(self) -> _Refit:
        groups, end = self._groups, int(self._starts[self._groups])
        lengths = np.diff(self._starts[: groups + 1])
        sizes = self._sizes[:groups].copy()
        return _Refit(self._slots[:end], self._counts[:end], lengths, sizes, len(self))

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
        if self._groups > self._fitted_groups:
            if self._tail is None:
                self._tail = self._matrix(self._fitted_groups, self._groups)
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
