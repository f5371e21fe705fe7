"""An in-memory TF-IDF index of resolved incidents (scikit-learn), rebuilt from stored documents.

Documents are hashed (``HashingVectorizer``: no vocabulary to keep or grow) and weighted by
inverse document frequency (``TfidfTransformer``). The weights are fitted on the whole set and
refitted when the set has grown by a fifth; documents added in between are weighted with the
fitted IDF (a word never seen gets the highest weight) and kept in a small tail. A lookup is one
sparse product over the inverted matrix plus the tail: time grows with how many documents share
the query's words, not with the vocabulary.

Without scikit-learn the index says so once in the log and every lookup answers nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

FEATURES = 2**20
REFIT_GROWTH = 1.2  # refit the IDF when the set has grown by a fifth
TAIL_MAX = 512  # or when this many documents wait in the tail
MAX_DF = 0.5  # words in more than half the documents tell them apart little: left out

try:  # the ``ml`` extra
    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the install
    AVAILABLE = False


@dataclass(frozen=True, slots=True)
class Hit:
    incident_id: int
    score: float  # cosine similarity, 0..1


def _split(doc: str) -> list[str]:
    return doc.split()


def _scores(q: Any, inverted: Any, n: int) -> Any:
    """Cosine scores of one weighted query row against every document of an inverted matrix
    (features x documents): walk the query's postings only, adding into a dense array."""
    scores = np.zeros(n, dtype=np.float64)
    indptr, indices, data = inverted.indptr, inverted.indices, inverted.data
    for term, weight in zip(q.indices, q.data, strict=True):
        start, end = indptr[term], indptr[term + 1]
        if start != end:
            scores[indices[start:end]] += weight * data[start:end]
    return scores


class SimilarIndex:
    """Documents keyed by incident id; adding an id again replaces its document."""

    def __init__(self) -> None:
        self._warned = False
        self._ids: list[int] = []
        self._docs: list[str] = []
        self._where: dict[int, int] = {}  # incident id -> position
        self._dead: set[int] = set()  # positions replaced by a newer document
        self._fitted = 0  # documents covered by the fitted matrix
        self._idf: Any = None
        self._keep: Any = None  # 1 x FEATURES: 0 for words in more than MAX_DF of documents
        self._main: Any = None  # features x documents, CSR, rows l2-normalised per document
        self._tail: list[Any] = []
        if AVAILABLE:
            self._vectorizer = HashingVectorizer(
                analyzer=_split, n_features=FEATURES, alternate_sign=False, norm=None
            )

    @property
    def available(self) -> bool:
        if not AVAILABLE and not self._warned:
            self._warned = True
            log.warning(
                "similar incidents are off: scikit-learn is not installed (install the 'ml' extra)"
            )
        return AVAILABLE

    def __len__(self) -> int:
        return len(self._where)

    def add(self, incident_id: int, doc: str) -> None:
        if incident_id in self._where:
            self._dead.add(self._where[incident_id])
        self._where[incident_id] = len(self._ids)
        self._ids.append(incident_id)
        self._docs.append(doc)
        if not self.available:
            return
        if (
            self._idf is None
            or len(self._ids) > self._fitted * REFIT_GROWTH
            or (len(self._tail) >= TAIL_MAX)
        ):
            self._main = None  # refit at the next lookup
            self._tail = []
        elif self._main is not None:
            self._tail.append(self._weigh([doc]))

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def _weigh(self, docs: list[str]) -> Any:
        counts = self._vectorizer.transform(docs)
        if self._keep is not None:  # drop words in most documents (like max_df)
            counts = sp.csr_matrix(counts.multiply(self._keep))
            counts.eliminate_zeros()
        counts.data = 1.0 + np.log(counts.data)  # sublinear term frequency
        return self._idf.transform(counts)  # l2-normalised rows

    def _refit(self) -> None:
        counts = self._vectorizer.transform(self._docs)
        df = np.bincount(counts.indices, minlength=FEATURES)
        self._keep = None
        if len(self._docs) >= 20:
            self._keep = (df <= MAX_DF * len(self._docs)).astype(np.float64).reshape(1, -1)
            counts = sp.csr_matrix(counts.multiply(self._keep))
            counts.eliminate_zeros()
        self._idf = TfidfTransformer(norm="l2", sublinear_tf=True).fit(counts)
        self._main = self._idf.transform(counts).T.tocsr()
        self._fitted = len(self._docs)
        self._tail = []

    def query(self, doc: str, k: int = 3, exclude: int | None = None) -> list[Hit]:
        """The ``k`` most similar documents (score > 0), best first; ties by the newer id."""
        if not self._ids or not self.available:
            return []
        if self._main is None:
            self._refit()
        q = self._weigh([doc])
        scores = _scores(q, self._main, self._fitted)
        if self._tail:
            extra = sp.vstack(self._tail).T.tocsr()
            scores = np.concatenate([scores, _scores(q, extra, extra.shape[1])])
        for pos in self._dead:
            scores[pos] = 0.0
        if exclude is not None and exclude in self._where:
            scores[self._where[exclude]] = 0.0
        want = min(len(scores), k + 8)
        top = (
            np.argpartition(-scores, want - 1)[:want]
            if want < len(scores)
            else np.arange(len(scores))
        )
        ranked = sorted(top, key=lambda p: (-round(float(scores[p]), 9), -self._ids[p]))
        hits = [Hit(self._ids[p], float(scores[p])) for p in ranked if scores[p] > 0]
        return hits[:k]


__all__ = ["AVAILABLE", "Hit", "SimilarIndex"]
