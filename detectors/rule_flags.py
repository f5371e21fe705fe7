"""Why a rule may not work on its data, for the console's rule page.

Two kinds of flag: the rule groups by or thresholds on a field nothing can produce (the
``validate`` warning, :mod:`detectors.field_check`), and the rule has opened incidents whose
group lacked a ``group_by`` value (their titles read "src unknown"): its events did not carry
the field it groups by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Engine, select

from bot.store.repo import INCIDENTS
from detectors.field_check import field_warnings
from detectors.fields import FieldExtractor
from detectors.model import Rule

RECENT_INCIDENTS = 2000


def missing_in_group_key(key: str) -> tuple[str, ...]:
    """The names whose value is empty in a group key (``rule|host=web-1,src=`` gives
    ``("src",)``); ``,``, ``=`` and ``\\`` in names and values are escaped in the key."""
    _, _, group = key.partition("|")
    pairs: list[list[str]] = [[""]]
    escaped = False
    for char in group:
        if escaped:
            pairs[-1][-1] += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            pairs.append([""])
        elif char == "=" and len(pairs[-1]) == 1:
            pairs[-1].append("")
        else:
            pairs[-1][-1] += char
    return tuple(pair[0] for pair in pairs if len(pair) == 2 and pair[0] and not pair[1])


def rule_flags(
    rules: Sequence[Rule], engine: Engine, extractor: FieldExtractor | None = None
) -> dict[str, list[str]]:
    """Per rule id, what to flag on the rule page (rules with nothing to flag are left out)."""
    flags: dict[str, list[str]] = {}
    for rule in rules:
        found = field_warnings(rule, extractor)
        if found:
            flags[rule.id] = found
    missing: dict[str, Counter[str]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(INCIDENTS.c.rule_id, INCIDENTS.c.group_key)
            .order_by(INCIDENTS.c.id.desc())
            .limit(RECENT_INCIDENTS)
        ).all()
    for rule_id, key in rows:
        for name in missing_in_group_key(key):
            missing.setdefault(rule_id, Counter())[name] += 1
    for rule_id, names in missing.items():
        for name, count in sorted(names.items()):
            flags.setdefault(rule_id, []).append(
                f"{count} recent incident{'s' if count != 1 else ''} had no {name}: "
                f"its events lack the field it groups by"
            )
    return flags
