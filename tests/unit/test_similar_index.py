"""The similarity document, the index and the card line's wording."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.similar import index as index_module
from bot.similar.document import Profile, document, tokens
from bot.similar.index import SimilarIndex
from bot.similar.service import Match, ago, card_line
from bot.similar.store import Ending

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_place_labels_and_masks_do_not_count() -> None:
    a = Profile.of("r", "", {"host": "web-1", "env": "prod"}, [("<TIME> upstream <NUM> down", 3)])
    b = Profile.of("r", "", {"host": "web-9", "env": "prod"}, [("<TIME> upstream <NUM> down", 3)])
    assert document(a) == document(b)
    assert not any("num" in t or "time" in t for t in tokens(a))
    assert "label:env=prod" in tokens(a)


def test_frequent_templates_weigh_more() -> None:
    often = tokens(Profile.of("r", templates=[("pool exhausted", 16)]))
    once = tokens(Profile.of("r", templates=[("pool exhausted", 1)]))
    assert often.count("tpl:pool") == 5 and once.count("tpl:pool") == 1


def test_the_index_ranks_alike_first_replaces_and_excludes() -> None:
    idx = SimilarIndex()
    idx.add(1, "rule:a tpl:pool tpl:exhausted")
    idx.add(2, "rule:b tpl:disk tpl:full")
    idx.add(3, "rule:a tpl:pool tpl:exhausted")
    hits = idx.query("rule:a tpl:pool tpl:exhausted", k=3)
    assert [h.incident_id for h in hits] == [3, 1]  # equal scores: the newer first
    assert hits[0].score == pytest.approx(1.0)
    assert [h.incident_id for h in idx.query("rule:a tpl:pool", exclude=3)] == [1]
    idx.add(3, "rule:b tpl:disk tpl:full")  # INC-3 reopened and resolved as something else
    assert [h.incident_id for h in idx.query("rule:a tpl:pool tpl:exhausted")] == [1]
    assert len(idx) == 3


def test_documents_added_after_the_fit_are_found() -> None:
    idx = SimilarIndex()
    for n in range(1, 51):
        idx.add(n, f"rule:r{n % 5} tpl:w{n % 5}")
    idx.query("warm")  # fits
    idx.add(51, "rule:new tpl:never-seen")
    assert idx.query("rule:new tpl:never-seen")[0].incident_id == 51


def test_without_scikit_learn_lookups_answer_nothing_and_say_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(index_module, "AVAILABLE", False)
    idx = SimilarIndex()
    with caplog.at_level(logging.WARNING):
        idx.add(1, "rule:a")
        assert idx.query("rule:a") == []
    assert "scikit-learn is not installed" in caplog.text


def ending(minutes: int, playbook: str = "", by: str = "slack:U1") -> Ending:
    return Ending(812, "5xx", T0 + timedelta(minutes=minutes), T0, by, "", playbook)


def test_the_card_line() -> None:
    now = T0 + timedelta(days=3, hours=2)
    first = Match(812, 0.9, ending(6, playbook="restart-web"))
    other = Match(700, 0.5, ending(30))
    assert card_line([first, other, other], now) == (
        "Like INC-812 (3 days ago, resolved by restart-web in 6 min) and 2 more"
    )
    assert card_line([Match(812, 0.9, ending(0, by="alice"))], T0 + timedelta(minutes=5)) == (
        "Like INC-812 (5 min ago, resolved by alice in 1 min)"
    )
    assert card_line([], now) == ""


def test_ago() -> None:
    assert ago(T0, T0 + timedelta(minutes=59)) == "59 min ago"
    assert ago(T0, T0 + timedelta(hours=47)) == "47 h ago"
    assert ago(T0, T0 + timedelta(days=12)) == "12 days ago"
    assert ago(T0, T0 - timedelta(hours=1)) == "0 min ago"
