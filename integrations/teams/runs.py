"""Auto-resolve, Approve and Cancel from Teams cards and text commands.

The Auto-resolve button (``Action.Execute``) is answered in the ``invoke`` response with a
confirmation card: the dry-run plan, the gate's verdict, **Confirm** and **Back**. Confirm
starts exactly the plan shown (its fingerprint is in the button's data) and answers with the
incident card, a line above it saying what happened; the run goes on in the background and the
card, updated through the outbox, shows its progress. Approve and Cancel act on the run the
card names. Every answer that shows the incident card shows the presser's own view of it
(:class:`~integrations.teams.views.CardViews`): no buttons for a viewer, no Approve for the
requester of the waiting run. Nothing here runs a playbook.
"""

from __future__ import annotations

from typing import Any

from bot.errors import BotError, NotFound, PermanentError
from bot.operations import Operations
from bot.textcommands import Switch, Verb
from integrations.teams.plans import confirm_card, kill_switch_text, run_changed, run_started
from integrations.teams.render import render_card, render_notice
from integrations.teams.views import CardViews
from playbooks.service import Remediation

SURFACE = "teams"
NOT_SET_UP = "auto-resolve is not set up on this bot: no playbooks are loaded"

Json = dict[str, Any]


class TeamsRuns:
    def __init__(self, operations: Operations, views: CardViews | None = None) -> None:
        self._operations = operations
        self._views = views

    def _remediation(self) -> Remediation:
        found: Remediation | None = getattr(self._operations, "remediation", None)
        if found is None:
            raise PermanentError(NOT_SET_UP)
        return found

    # card buttons ---------------------------------------------------------------------------

    async def plan(self, incident_id: int, actor: str, playbook_id: str = "") -> Json:
        """The confirmation card; a refusal to plan at all comes back on the incident card."""
        try:
            preview = await self._remediation().preview(incident_id, actor, playbook_id or None)
        except BotError as exc:
            return await self.card(incident_id, actor, str(exc))
        return confirm_card(preview)

    async def confirm(
        self, incident_id: int, actor: str, fingerprint: str, playbook_id: str, key: str
    ) -> Json:
        try:
            run = await self._remediation().start(
                incident_id,
                actor,
                SURFACE,
                fingerprint,
                playbook_id=playbook_id or None,
                idempotency_key=key,
            )
        except BotError as exc:
            return await self.card(incident_id, actor, str(exc))
        return await self.card(incident_id, actor, run_started(run))

    async def act_on_run(self, incident_id: int, run_id: int, actor: str, approve: bool) -> Json:
        said = await self.approve_or_cancel(run_id, actor, approve)
        return await self.card(incident_id, actor, said)

    async def approve_or_cancel(
        self, run_id: int, actor: str, approve: bool, reason: str = ""
    ) -> str:
        try:
            if not run_id:
                raise PermanentError("this card names no run: open the incident again")
            if approve:
                return run_changed(
                    await self._remediation().approve(run_id, actor, SURFACE), "approved"
                )
            return run_changed(
                await self._remediation().cancel(run_id, actor, SURFACE, reason), "cancelled"
            )
        except BotError as exc:
            return str(exc)

    async def card(self, incident_id: int, actor: str, notice: str = "") -> Json:
        """The incident card as ``actor`` may use it, ``notice`` above it."""
        try:
            card = await self._operations.card(incident_id)
        except NotFound as exc:
            return render_notice(str(exc))
        if self._views is None:
            return render_card(card, notice)
        return await self._views.render(card, actor, notice)

    # text commands --------------------------------------------------------------------------

    async def answer(
        self,
        verb: Verb,
        actor: str,
        incident: str = "",
        playbook: str = "",
        run: int | None = None,
        switch: Switch | None = None,
        text: str = "",
    ) -> tuple[str, Json | None]:
        """(text, card) answering a remediation command; BotError is the caller's to word."""
        if verb is Verb.AUTO_RESOLVE:
            preview = await self._remediation().preview(incident, actor, playbook or None)
            return "", confirm_card(preview)
        if verb in (Verb.APPROVE, Verb.CANCEL_RUN):
            assert run is not None
            return await self.approve_or_cancel(run, actor, verb is Verb.APPROVE, text), None
        assert verb is Verb.KILLSWITCH and switch is not None
        if switch is Switch.STATUS:
            return kill_switch_text(await self._operations.kill_switch_status()), None
        change = await self._operations.kill_switch(switch is Switch.ON, actor, SURFACE, text)
        said = kill_switch_text(change.switch)
        return (said if change.changed else f"Nothing changed. {said}"), None
