"""Recover: a rule with ``resolve_after: N`` resolves an incident after N clean runs.

A run is clean for a group when the rule ran successfully and that group did not fire. The
count lives in the rule's memory (``clean:<group key>``), so it survives restarts; a group that
fires again starts from zero.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from detectors.memory import RuleMemory

PREFIX = "clean:"


def clean_runs(
    active: Sequence[tuple[int, str]],
    fired: Collection[str],
    memory: RuleMemory,
    resolve_after: int,
) -> list[int]:
    """Count one clean run for every active group that did not fire; return the incidents
    whose group has now been clean ``resolve_after`` times in a row."""
    due = []
    for key in [k for k in memory if k.startswith(PREFIX)]:
        if key.removeprefix(PREFIX) in fired:
            memory.delete(key)
    for incident_id, group_key in active:
        if group_key in fired:
            continue
        count = int(memory.get(PREFIX + group_key, 0)) + 1
        if count >= resolve_after:
            memory.delete(PREFIX + group_key)
            due.append(incident_id)
        else:
            memory.set(PREFIX + group_key, count)
    live = {key for _, key in active}
    for key in [k for k in memory if k.startswith(PREFIX)]:
        if key.removeprefix(PREFIX) not in live:
            memory.delete(key)  # resolved some other way: forget its count
    return due
