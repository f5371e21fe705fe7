"""The SPL subset the bot understands itself: parsed once, run over rows.

The rule validator, the search planner (shared searches) and the embedded backend all use this
one engine; see docs/spl-subset.md for what it supports.
"""

from detectors.spl.engine import SUPPORTED_COMMANDS, Pipeline, Prefilter, format_value, parse, run
from detectors.spl.nodes import SplError

__all__ = [
    "SUPPORTED_COMMANDS",
    "Pipeline",
    "Prefilter",
    "SplError",
    "format_value",
    "parse",
    "run",
]
