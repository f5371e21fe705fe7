"""Shared, index-time-incremental searches ("feeds"): each event fetched once, for every rule
of its index. See docs/rules.md, "Late data and search cost"."""

from detectors.feeds.feed import Feed, FeedBroken, FeedFigures
from detectors.feeds.feedset import (
    DEFAULT_LATE_SWEEP,
    DEFAULT_MAX_EVENTS,
    FeedInfo,
    FeedSet,
    FeedView,
)
from detectors.feeds.plan import FeedPlan, FeedSpec, plan_feeds, why_not_shared

__all__ = [
    "DEFAULT_LATE_SWEEP",
    "DEFAULT_MAX_EVENTS",
    "Feed",
    "FeedBroken",
    "FeedFigures",
    "FeedInfo",
    "FeedPlan",
    "FeedSet",
    "FeedSpec",
    "FeedView",
    "plan_feeds",
    "why_not_shared",
]
