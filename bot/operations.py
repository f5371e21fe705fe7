"""What a surface may do: the commands and the reads behind chat buttons and slash commands.

Inbound adapters (Slack, Teams, the console, the CLI, PagerDuty webhooks) parse a request, build
a :class:`bot.domain.incident.Command` and call :meth:`Operations.execute`; the reads here answer
``list``, ``show``, ``rules`` and the previews in suppress and silence dialogs. Everything runs
in worker threads so the event loop stays free to acknowledge the next request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.authz import Role, Roles
from bot.domain.card import Card, CardOptions
from bot.domain.incident import Command, Incident, State, parse_human_id
from bot.errors import NotFound, PermanentError, PolicyViolation
from bot.interactions import Interactions, Outcome
from bot.maintenance import Maintenance
from bot.pipeline.ingest_rows import labels_of_incident
from bot.pipeline.mute import Matcher, parse_matchers
from bot.ports import Clock
from bot.store.cards import load_card
from bot.store.repo import INCIDENTS, RULE_STATE, SILENCES, IncidentFilter, list_incidents
from bot.store.runtime_config import (
    KillSwitch,
    KillSwitchChange,
    change_kill_switch,
    read_kill_switch,
)

if TYPE_CHECKING:
    from playbooks.service import Remediation

ACTIVE = (State.OPEN.value, State.ACKNOWLEDGED.value, State.SUPPRESSED.value)
MAX_SILENCE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RuleStatus:
    id: str
    title: str
    enabled: bool
    last_run_at: datetime | None
    last_error: str
    consecutive_failures: int
    last_hits: int


@dataclass(frozen=True, slots=True)
class SilenceInfo:
    id: int
    matchers: tuple[Matcher, ...]
    ends_at: datetime
    reason: str
    created_by: str
    matching_now: int


class Operations:
    def __init__(
        self,
        engine: Engine,
        interactions: Interactions,
        roles: Roles,
        clock: Clock,
        console_url: str | CardOptions,
        rules: Sequence[tuple[str, str, bool]] = (),
        on_silence: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_silence = on_silence
        self._engine = engine
        self._interactions = interactions
        self.roles = roles
        self._clock = clock
        self._console_url = console_url
        self._rules = list(rules)  # (id, title, enabled)
        #: playbook runs (preview, start, approve, cancel); None when playbooks are not set up
        self.remediation: Remediation | None = None
        #: maintenance windows (list, add, remove)
        self.maintenance = Maintenance(engine, roles, clock, on_silence)

    # commands ---------------------------------------------------------------------------------

    async def execute(
        self, incident_ref: str | int, command: Command, groups: Iterable[str] = ()
    ) -> Outcome:
        """Run a command (authz, transition, timeline, audit, outbox); see ``Interactions``."""
        return await self._interactions.execute(incident_ref, command, groups)

    # reads ------------------------------------------------------------------------------------

    async def incident(self, incident_ref: str | int) -> Incident:
        number = self._number(incident_ref)

        def load() -> Incident:
            with Session(self._engine) as session:
                found, _ = list_incidents(
                    session, IncidentFilter(), limit=1, offset=0, ids=[number]
                )
            if not found:
                raise NotFound(f"no incident INC-{number}")
            return found[0]

        return await asyncio.to_thread(load)

    async def card(self, incident_ref: str | int) -> Card:
        number = self._number(incident_ref)

        def load() -> Card:
            with Session(self._engine) as session:
                return load_card(session, number, self._console_url)

        return await asyncio.to_thread(load)

    async def incidents(self, states: Sequence[str] = ACTIVE, limit: int = 20) -> list[Incident]:
        def load() -> list[Incident]:
            with Session(self._engine) as session:
                return list_incidents(session, IncidentFilter(state=tuple(states)), limit)[0]

        return await asyncio.to_thread(load)

    async def rules(self) -> list[RuleStatus]:
        def load() -> list[RuleStatus]:
            with self._engine.connect() as conn:
                states = {r.rule_id: r for r in conn.execute(select(RULE_STATE))}
            out = []
            for rule_id, title, enabled in self._rules:
                st = states.get(rule_id)
                out.append(
                    RuleStatus(
                        rule_id,
                        title,
                        enabled,
                        st.last_run_at if st else None,
                        st.last_error if st else "",
                        st.consecutive_failures if st else 0,
                        st.last_hits if st else 0,
                    )
                )
            return out

        return await asyncio.to_thread(load)

    async def count_matching(self, matchers: Sequence[Matcher]) -> int:
        """How many active incidents a silence with these matchers would cover right now."""

        def load() -> int:
            with self._engine.connect() as conn:
                rows = conn.execute(select(INCIDENTS).where(INCIDENTS.c.state.in_(ACTIVE)))
                return sum(
                    1 for r in rows if all(m.matches(labels_of_incident(r)) for m in matchers)
                )

        return await asyncio.to_thread(load)

    async def alerts_of(self, incident_ref: str | int) -> int:
        """Active alerts a suppression of this incident hides (for the suppress dialog)."""
        incident = await self.incident(incident_ref)
        return incident.alert_count if incident.is_active else 0

    async def silence(
        self,
        matcher_texts: Sequence[str],
        duration: timedelta,
        reason: str,
        actor: str,
        groups: Iterable[str] = (),
    ) -> SilenceInfo:
        """Create a silence (responder role); the answer says how many incidents it covers."""
        self.roles.require(actor, Role.RESPONDER, groups)
        matchers = parse_matchers(matcher_texts)
        if duration <= timedelta(0) or duration > MAX_SILENCE:
            raise PermanentError("a silence lasts between 1s and 30d")
        if not reason.strip():
            raise PermanentError("a silence needs a reason")
        now = self._clock.now()

        def store() -> int:
            with self._engine.begin() as conn:
                return int(
                    conn.execute(
                        SILENCES.insert().values(
                            matchers_json=json.dumps([str(m) for m in matchers]),
                            starts_at=now,
                            ends_at=now + duration,
                            created_by=actor,
                            reason=reason.strip(),
                            created_at=now,
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                )

        silence_id = await asyncio.to_thread(store)
        self._on_silence()
        matching = await self.count_matching(matchers)
        return SilenceInfo(silence_id, matchers, now + duration, reason.strip(), actor, matching)

    # the kill switch ----------------------------------------------------------------------------

    async def kill_switch_status(self) -> KillSwitch:
        """The kill switch as every replica sees it (anyone may ask)."""
        return await asyncio.to_thread(read_kill_switch, self._engine)

    async def kill_switch(
        self, on: bool, actor: str, surface: str, reason: str, groups: Iterable[str] = ()
    ) -> KillSwitchChange:
        """Turn the kill switch on or off (admin role; a reason is required; audited)."""
        self.roles.require(actor, Role.ADMIN, groups)
        now = self._clock.now()
        return await asyncio.to_thread(
            change_kill_switch, self._engine, on, actor, surface, reason, now
        )

    @staticmethod
    def _number(incident_ref: str | int) -> int:
        number = incident_ref if isinstance(incident_ref, int) else parse_human_id(incident_ref)
        if number is None:
            raise NotFound(f"no incident {incident_ref!r}: ids look like INC-12")
        return number


__all__ = ["Operations", "PolicyViolation", "RuleStatus", "SilenceInfo"]
