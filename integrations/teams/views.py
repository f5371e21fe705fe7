"""Who sees which buttons: per-user views of an incident card (Universal Actions refresh).

Every incident card the bot posts carries a ``refresh`` clause: an ``Action.Execute`` with the
verb ``refresh`` and ``userIds``, the people Teams refreshes the card for when they
open the conversation (the responders the roles file names by Teams id, and the last person who
pressed one of its buttons; Teams takes at most :data:`MAX_REFRESH_USERS`). In chats with fewer
members Teams refreshes it for everyone. The refresh invoke is answered with the card as that
person may use it:

* a viewer (no responder role) sees the card without buttons and a line saying why;
* a responder sees the buttons of the card's state, except **Approve** on a run they requested
  themselves (a run needs a second responder).

The same view answers a press (the presser's copy of the card), including the playbook-run
buttons (Auto-resolve, Confirm, Approve, Cancel): a run's answer is the presser's own view too.
The requester of a run waiting for approval is among the people the card refreshes for, so
their copy never offers them an Approve they cannot use.

Identities in ``userIds`` are Teams user MRIs: ``8:orgid:<AAD object id>`` for the people the
roles file names (``teams:<AAD object id>``) and a run's requester, and the ``from.id`` Teams
gave the last presser (kept in the database: :mod:`integrations.teams.pressers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.authz import Role, Roles
from bot.domain.card import ActionKind, Card
from bot.errors import BotError
from bot.operations import Operations
from integrations.teams.charts import ChartLinks
from integrations.teams.pressers import LastPressers
from integrations.teams.render import MAX_REFRESH_USERS, render_card

ORGID = "8:orgid:"
VIEW_ONLY = "You can follow this incident here; acting on it needs the responder role."


def responder_ids(roles: Roles) -> tuple[str, ...]:
    """The Teams MRIs of everyone the roles file makes a responder (or admin) by name."""
    found = [
        f"{ORGID}{identity.split(':', 1)[1]}"
        for identity, role in sorted(roles.members.items())
        if identity.startswith("teams:") and identity != "teams:*" and role.allows(Role.RESPONDER)
    ]
    return tuple(found)


def refresh_users(responders: Sequence[str], *first: str) -> tuple[str, ...]:
    """``userIds`` for a card: ``first`` (the last presser, a waiting run's requester), then
    responders, no repeats, at most 60."""
    seen: dict[str, None] = {}
    for user in (*first, *responders):
        if user:
            seen.setdefault(user, None)
    return tuple(seen)[:MAX_REFRESH_USERS]


def mri_of(actor: str) -> str:
    """The Teams MRI of ``teams:<AAD object id>`` ("" for anyone else)."""
    kind, _, aad = actor.partition(":")
    return f"{ORGID}{aad}" if kind == "teams" and aad and aad != "*" else ""


def can_act(roles: Roles, actor: str) -> bool:
    return roles.role_of(actor).allows(Role.RESPONDER)


def without_buttons(card: Card) -> Card:
    """The card as a viewer sees it: links only, no buttons, no 'unavailable' lines."""
    return replace(card, actions=tuple(a for a in card.actions if a.kind is ActionKind.VIEW))


def without_own_approval(card: Card) -> Card:
    """The card for the person who requested its run: everything but Approve."""
    return replace(
        card, actions=tuple(a for a in card.actions if a.kind is not ActionKind.APPROVE_RUN)
    )


def offers_approval(card: Card) -> bool:
    return bool(card.run_id) and any(a.kind is ActionKind.APPROVE_RUN for a in card.actions)


class CardViews:
    """Renders an incident card for one person (``teams:<AAD object id>``), and names the
    people a card refreshes for."""

    def __init__(
        self, operations: Operations, pressers: LastPressers, charts: ChartLinks | None = None
    ) -> None:
        self._operations = operations
        self._pressers = pressers
        self._charts = charts or ChartLinks()

    async def render(self, card: Card, actor: str, notice: str = "") -> dict[str, Any]:
        requester = await self._waiting_for_approval(card)
        users = await self._users(card, requester)  # everyone's copy names the same people
        footnote = ""
        if not can_act(self._operations.roles, actor):
            card, footnote = without_buttons(card), VIEW_ONLY
        elif requester and requester == actor:
            card = without_own_approval(card)
        chart = await self._charts.url(card.incident_id)
        return render_card(card, notice, users, footnote, chart)

    async def refresh_for(self, card: Card) -> tuple[str, ...]:
        """``userIds`` of the card's refresh clause: the last presser, the requester of the
        run waiting for approval, then the responders the roles file names."""
        return await self._users(card, await self._waiting_for_approval(card))

    async def _users(self, card: Card, requester: str) -> tuple[str, ...]:
        presser = await self._pressers.of(card.incident_id)
        return refresh_users(responder_ids(self._operations.roles), presser, mri_of(requester))

    async def _waiting_for_approval(self, card: Card) -> str:
        """Who requested the run the card offers to approve ("" when it offers none)."""
        return await self._requester(card.run_id) if offers_approval(card) else ""

    async def _requester(self, run_id: int) -> str:
        """Who requested run ``run_id`` (who may not approve it too); "" when unknown."""
        remediation = getattr(self._operations, "remediation", None)
        if remediation is None or not run_id:
            return ""
        try:
            run = await remediation.run(run_id)
        except BotError:
            return ""
        return str(run.requested_by or "")
