"""Storm groups: one analysis for incidents of one rule whose evidence shows the same templates.

In a storm most incidents are the same rule firing for the same reason on different hosts.
Their *signature* is the rule and the set of log templates (drain3) of their evidence, with the
incident's own host and service names masked. The first incident of a signature is analysed
(the *leader*); the others wait for its answer and get it with their **own** evidence ids:
each line the leader's answer cites is replaced by a line of the member's evidence of the same
template (mined together, so templates compare). The adapted answer must pass the same check as
any answer (:func:`~integrations.bedrock.answer.check_answer`) against the member's pack; when a
cited template is missing or the check fails, the member gets its own analysis.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drain3 import TemplateMiner

from bot.domain.incident import Incident
from integrations.bedrock.answer import Answer
from integrations.heuristic.templates import miner_config, top_templates

HOST = "<HOST>"
SERVICE = "<SERVICE>"
STORM_WINDOW = 600.0  # seconds a leader's answer is offered to its group


def _mask(text: str, incident: Incident) -> str:
    text = " ".join(text.split())
    if incident.host:
        text = text.replace(incident.host, HOST)
    if incident.service:
        text = text.replace(incident.service, SERVICE)
    return text


def signature(incident: Incident, lines: Mapping[str, str]) -> str:
    """The storm signature of an incident's evidence (rule + template set), as a digest."""
    masked = [_mask(text, incident) for text in lines.values()]
    templates = sorted({t for t, _ in top_templates(masked, limit=len(masked) or 1)})
    raw = "\x00".join([incident.rule_id, *templates])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Shared:
    """A leader's checked answer, and the evidence it cited from."""

    leader: Incident
    answer: Answer
    lines: Mapping[str, str]  # the leader's pack: evidence id -> text as sent
    engine: str
    meta: Mapping[str, str]
    followers: int = 0  # members that took this answer so far


def _clean(evidence_id: str) -> str:
    return evidence_id.strip().strip("[]").strip()


def adapt(shared: Shared, incident: Incident, lines: Mapping[str, str]) -> Answer | None:
    """The leader's answer with this incident's own evidence ids cited (None when a cited
    line has no line of the same template here)."""
    miner = TemplateMiner(config=miner_config())
    theirs = {
        i: miner.add_log_message(_mask(t, shared.leader))["cluster_id"]
        for i, t in shared.lines.items()
    }
    mine: dict[int, list[str]] = {}
    for i, t in lines.items():
        mine.setdefault(miner.add_log_message(_mask(t, incident))["cluster_id"], []).append(i)
    causes = []
    for cause in shared.answer.probable_causes:
        ids: list[str] = []
        for cited in cause.evidence_ids:
            options = [i for i in mine.get(theirs.get(_clean(cited), -1), []) if i not in ids]
            if not options:
                return None
            ids.append(options[0])
        causes.append(cause.model_copy(update={"evidence_ids": ids}))
    summary = shared.answer.summary
    if shared.leader.host and incident.host:
        summary = summary.replace(shared.leader.host, incident.host)
    return shared.answer.model_copy(update={"probable_causes": causes, "summary": summary})


def same_cause(shared: Shared) -> str:
    """What a member's card says: ``same cause as INC-12 and 37 others``."""
    others = shared.followers - 1
    tail = f" and {others} other{'s' if others != 1 else ''}" if others > 0 else ""
    return f"same cause as {shared.leader.human_id}{tail}"


class StormGroups:
    """Leaders in flight and their answers, by signature, for ``window`` seconds after the
    leader started (a storm; later incidents are analysed afresh). Bounded; one event loop."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        window: float = STORM_WINDOW,
        size: int = 1024,
    ) -> None:
        self._now = monotonic
        self._window = window
        self._size = size
        self._groups: dict[str, tuple[float, asyncio.Future[Shared | None]]] = {}

    def join(self, key: str, incident_id: int) -> tuple[asyncio.Future[Shared | None], bool]:
        """The group's answer to wait for, and whether the caller leads (must settle it).
        An incident never follows its own earlier answer: it leads again."""
        now = self._now()
        found = self._groups.get(key)
        if found is not None and now - found[0] <= self._window:
            future = found[1]
            settled = future.result() if future.done() else None
            if not future.done() or (settled is not None and settled.leader.id != incident_id):
                return future, False
        future = asyncio.get_running_loop().create_future()
        self._groups.pop(key, None)
        self._groups[key] = (now, future)
        while len(self._groups) > self._size:
            del self._groups[next(iter(self._groups))]
        return future, True

    def settle(
        self, key: str, future: asyncio.Future[Shared | None], shared: Shared | None
    ) -> None:
        if not future.done():
            future.set_result(shared)
        found = self._groups.get(key)
        if shared is None and found is not None and found[1] is future:
            del self._groups[key]  # the next member leads instead


__all__ = ["Shared", "StormGroups", "adapt", "same_cause", "signature"]
