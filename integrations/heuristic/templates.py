"""Log templates of an evidence set, mined with drain3 (in memory, nothing read or written)."""

from __future__ import annotations

from collections.abc import Iterable

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

_B = r"((?<=[^A-Za-z0-9])|^)"  # start of a token
_E = r"((?=[^A-Za-z0-9])|$)"  # end of a token
_KEEP = "".join(rf"(?<!{key}=)" for key in ("status", "EventCode", "EventID", "event_id", "code"))

_MASKS = (
    # timestamps first, so their digits are not masked piece by piece
    (
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "TIME",
    ),
    (
        _B + r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{2}:\d{2}:\d{2}",
        "TIME",
    ),
    (_B + r"\d{2}:\d{2}:\d{2}(?:\.\d+)?" + _E, "TIME"),
    (_B + r"\d{1,2}/\d{1,2}/\d{2,4}" + _E, "DATE"),
    (
        _B + r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" + _E,
        "ID",
    ),
    (_B + r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?" + _E, "IP"),
    (_B + r"(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}" + _E, "IP"),
    (_B + r"0x[0-9a-fA-F]+" + _E, "HEX"),
    (_B + r"(?=[0-9a-f]*\d)[0-9a-f]{8,}" + _E, "ID"),
    # numbers, except the ones that name what happened (status and event codes)
    (_B + _KEEP + r"[-+]?\d+(?:\.\d+)?" + _E, "NUM"),
)


def miner_config() -> TemplateMinerConfig:
    """The miner settings every template comparison uses (masks, similarity, depth)."""
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(rx, name) for rx, name in _MASKS]
    config.drain_sim_th = 0.5
    config.drain_depth = 4
    config.profiling_enabled = False
    return config


def top_templates(lines: Iterable[str], limit: int = 5) -> tuple[tuple[str, int], ...]:
    """The ``limit`` most frequent templates as ``(template, count)``, most frequent first.

    A fresh miner per call: the result depends only on ``lines`` and their order. Ties are broken
    by template text so the order is stable.
    """
    miner = TemplateMiner(config=miner_config())
    for line in lines:
        text = " ".join(line.split())  # one line per template: fold newlines and runs of blanks
        if text:
            miner.add_log_message(text)
    clusters = [(c.get_template(), c.size) for c in miner.drain.clusters]
    clusters.sort(key=lambda tc: (-tc[1], tc[0]))
    return tuple(clusters[:limit])


__all__ = ["miner_config", "top_templates"]
