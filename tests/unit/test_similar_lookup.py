"""The index answers exactly what a full TF-IDF cosine over every past incident answers, while
storing repeated documents once and growing as incidents resolve."""

from __future__ import annotations

import random

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

from bot.similar import index as index_module
from bot.similar.document import Profile, document
from bot.similar.index import SimilarIndex
from bot.similar.vectors import FEATURES, MAX_DF, Hasher, feature

WEB = (
    ('<TIME> host=web-<NUM> status=503 msg="no live upstreams while connecting to upstream"', 40),
    ("<TIME> app-<NUM> ERROR connection pool exhausted: <NUM> of <NUM> in use", 8),
)
DISK = (("<TIME> db-<NUM> disk /var used <NUM>% of <NUM> GB, filling", 12),)
AUTH = (("<TIME> sshd failed password for invalid user <*> from <IP> port <NUM>", 30),)
OOM = (("<TIME> kernel: out of memory: killed process <NUM> (java)", 3),)


class Reference:
    """A plain cosine against every document (ids 1..n) with weights fitted on ``fitted``,
    ties to the newer id: what the index must answer."""

    def __init__(self, fitted: list[str], everyone: list[str]) -> None:
        self.hashing = HashingVectorizer(
            analyzer=str.split, n_features=FEATURES, alternate_sign=False, norm=None
        )
        counts = self.hashing.transform(fitted)
        df = np.bincount(counts.indices, minlength=FEATURES)
        kept = df <= MAX_DF * len(fitted) if len(fitted) >= 20 else np.ones(FEATURES, dtype=bool)
        self.keep = sp.diags(kept.astype(np.float64)).tocsr()
        self.tfidf = TfidfTransformer(sublinear_tf=True).fit(counts @ self.keep)
        self.docs = self.tfidf.transform(self.hashing.transform(everyone) @ self.keep)

    def top(self, query: str, k: int = 3, exclude: int | None = None) -> list[tuple[int, float]]:
        q = self.tfidf.transform(self.hashing.transform([query]) @ self.keep)
        scores = (self.docs @ q.T).toarray().ravel()
        ids = [i for i in range(1, len(scores) + 1) if i != exclude and scores[i - 1] > 0]
        ids.sort(key=lambda i: (-round(float(scores[i - 1]), 9), -i))
        return [(i, float(scores[i - 1])) for i in ids[:k]]


def corpus(n: int, seed: int) -> list[str]:
    """Documents from a small vocabulary: many repeat, most share words, all share one."""
    rng = random.Random(seed)
    words = [f"tpl:w{i}" for i in range(60)] + [f"rule:r{i}" for i in range(6)]
    shapes = [rng.sample(words, rng.randint(3, 12)) for _ in range(n // 4 + 1)]
    docs = []
    for _ in range(n):
        shape = rng.choice(shapes)
        extra = rng.sample(words, rng.randint(0, 2)) if rng.random() < 0.5 else []
        docs.append(" ".join(["label:env=prod", *shape, *extra, *shape[: rng.randint(0, 3)]]))
    return docs


def test_slots_are_those_of_scikit_learns_hashing() -> None:
    terms = ["rule:web-5xx", "tpl:upstream+pool", "label:env=prod", "rca:défaut", "x" * 300]
    hashing = HashingVectorizer(
        analyzer=str.split, n_features=FEATURES, alternate_sign=False, norm=None
    )
    expected = hashing.transform([" ".join(terms)]).indices
    assert sorted(feature(t) for t in terms) == sorted(expected)
    seen: dict[int, str] = {}
    for n in range(100_000):  # two terms that land in one slot: their counts add up
        term = f"tpl:t{n}"
        if (slot := feature(term)) in seen:
            break
        seen[slot] = term
    pair = f"{seen[slot]} {term} {term}"
    assert Hasher().counts(pair)[1].tolist() == [3.0]
    assert hashing.transform([pair]).data.tolist() == [3.0]
    slots, counts = Hasher().counts("b a b c b")
    assert dict(zip(slots.tolist(), counts.tolist(), strict=True)) == {
        feature("a"): 1.0,
        feature("b"): 3.0,
        feature("c"): 1.0,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_ranking_is_that_of_a_full_cosine_over_every_incident(seed: int) -> None:
    docs = corpus(400, seed)
    idx = SimilarIndex()
    for n, doc in enumerate(docs, 1):
        idx.add(n, doc)
    assert idx.groups < len(docs)  # repeated documents are held once
    full = Reference(docs, docs)
    for q, query in enumerate(corpus(40, seed + 100)):
        exclude = q + 1 if q % 3 == 0 else None
        got = [(h.incident_id, h.score) for h in idx.query(query, k=3, exclude=exclude)]
        want = full.top(query, exclude=exclude)
        assert [i for i, _ in got] == [i for i, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-12)


def test_documents_added_since_the_fit_rank_with_the_fitted_weights() -> None:
    docs = corpus(300, 7)
    idx = SimilarIndex()
    for n, doc in enumerate(docs[:250], 1):
        idx.add(n, doc)
    idx.query("warm up")  # fits on 250
    for n, doc in enumerate(docs[250:], 251):
        idx.add(n, doc)
    full = Reference(docs[:250], docs)
    for query in corpus(20, 8):
        got = [h.incident_id for h in idx.query(query, k=3)]
        assert got == [i for i, _ in full.top(query)]


def test_the_weights_are_refitted_as_the_history_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "TAIL_MAX", 8)
    docs = corpus(100, 9)
    idx = SimilarIndex()
    for n, doc in enumerate(docs, 1):
        idx.add(n, doc)
    idx.query("warm up")  # fitted on 100
    docs += [f"rule:r1 tpl:new{n} tpl:w1" for n in range(8)]  # eight new vectors: a refit
    for n in range(101, 109):
        idx.add(n, docs[n - 1])
    queries = [*corpus(10, 10), "rule:r1 tpl:new3"]
    before, after = Reference(docs[:100], docs), Reference(docs, docs)
    # the lookup that starts the refit answers with the weights it has, without waiting
    assert [h.incident_id for h in idx.query(queries[0])] == [i for i, _ in before.top(queries[0])]
    idx.settle()
    for query in queries:
        assert [h.incident_id for h in idx.query(query)] == [i for i, _ in after.top(query)]
    docs += docs[:22]  # 130 incidents, no new vector: grown by more than a fifth, a refit
    for n in range(109, 131):
        idx.add(n, docs[n - 1])
    idx.query("start the refit")
    idx.settle()
    after = Reference(docs, docs)
    for query in queries:
        assert [h.incident_id for h in idx.query(query)] == [i for i, _ in after.top(query)]


def test_incidents_with_the_same_document_share_a_vector_and_come_newest_first() -> None:
    idx = SimilarIndex()
    for n in range(1, 11):
        idx.add(n, "rule:a tpl:pool tpl:exhausted")
    idx.add(11, "rule:b tpl:disk tpl:full")
    assert (len(idx), idx.groups) == (11, 2)
    query = "rule:a tpl:pool tpl:exhausted"
    assert [h.incident_id for h in idx.query(query)] == [10, 9, 8]
    assert [h.incident_id for h in idx.query(query, exclude=10)] == [9, 8, 7]
    idx.add(9, "rule:b tpl:disk tpl:full")  # INC-9 reopened and resolved as something else
    assert [h.incident_id for h in idx.query(query)] == [10, 8, 7]
    assert [h.incident_id for h in idx.query("rule:b tpl:disk", k=5)] == [11, 9]
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 10):
        idx.add(n, "rule:c tpl:other")
    assert idx.query(query) == []  # no incident holds that document any more


def test_the_top_three_of_a_known_case_is_unchanged() -> None:
    """The integration test's history, padded with unrelated incidents: a new 5xx burst is
    most like the two past bursts with both templates, then the one with the first only."""
    history = [
        Profile.of("web-5xx", "", {"host": "web-1"}, WEB, "upstream pool exhausted"),  # 1
        Profile.of("disk-full", "", {"host": "db-1"}, DISK, "/var filling on db-1"),  # 2
        Profile.of("web-5xx", "", {"host": "web-2"}, WEB, "upstream pool exhausted"),  # 3
        Profile.of("web-5xx", "", {"host": "web-3"}, WEB[:1], "no live upstreams"),  # 4
    ]
    for n in range(30):
        history.append(Profile.of("ssh-brute", "", {"host": f"bastion-{n}"}, AUTH, "brute force"))
        history.append(Profile.of("oom-kill", "", {"host": f"app-{n}"}, OOM, "heap too small"))
    idx = SimilarIndex()
    for n, profile in enumerate(history, 1):
        idx.add(n, document(profile))
    new = Profile.of("web-5xx", "", {"host": "web-4"}, WEB, "upstream pool exhausted")
    hits = idx.query(document(new), k=3)
    assert [h.incident_id for h in hits] == [3, 1, 4]
    assert hits[0].score == pytest.approx(1.0)
    assert hits[1].score == pytest.approx(1.0)
    assert 0.25 < hits[2].score < 0.9
