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

Identities in ``userIds`` are Teams user MRIs: ``8:orgid:<AAD object id>`` for the people the
roles file names (``teams:<AAD object id>``), and the ``from.id`` Teams gave the last presser.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

from bot.authz import Role, Roles
from bot.domain.card import ActionKind, Card
from bot.errors import BotError
from bot.operations import Operations
from integrations.teams.charts import ChartLinks
from integrations.teams.render import MAX_REFRESH_USERS, render_card

ORGID = "8:orgid:"
KEEP_PRESSERS = 10_000  # incidents whose last presser is remembered (oldest forgotten first)
VIEW_ONLY = "You can follow this incident here; acting on it needs the responder role."


def responder_ids(roles: Roles) -> tuple[str, ...]:
    """The Teams MRIs of everyone the roles file makes a responder (or admin) by name."""
    found = [
        f"{ORGID}{identity.split(':', 1)[1]}"
        for identity, role in sorted(roles.members.items())
        if identity.startswith("teams:") and identity != "teams:*" and role.allows(Role.RESPONDER)
    ]
    return tuple(found)


def refresh_users(responders: tuple[str, ...], presser: str = "") -> tuple[str, ...]:
    """``userIds`` for a card: the last presser first, then responders, no repeats, at most 60."""
    seen: dict[str, None] = {}
    for user in (presser, *responders):
        if user:
            seen.setdefault(user, None)
    return tuple(seen)[:MAX_REFRESH_USERS]


class LastPressers:
    """The Teams id of the last person who pressed a button on each incident's card.

    Kept in memory: after a restart (or on another replica) a card's refresh names only the
    responders until someone presses again.
    """

    def __init__(self, keep: int = KEEP_PRESSERS) -> None:
        self._keep = keep
        self._by_incident: OrderedDict[int, str] = OrderedDict()

    def note(self, incident_id: int, user: str) -> None:
        if not user:
            return
        self._by_incident[incident_id] = user
        self._by_incident.move_to_end(incident_id)
        while len(self._by_incident) > self._keep:
            self._by_incident.popitem(last=False)

    def of(self, incident_id: int) -> str:
        return self._by_incident.get(incident_id, "")


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
    """Renders an incident card for one person (``teams:<AAD object id>``)."""

    def __init__(
        self, operations: Operations, pressers: LastPressers, charts: ChartLinks | None = None
    ) -> None:
        self._operations = operations
        self._pressers = pressers
        self._charts = charts or ChartLinks()

    async def render(self, card: Card, actor: str, notice: str = "") -> dict[str, Any]:
        roles = self._operations.roles
        footnote = ""
        if not can_act(roles, actor):
            card, footnote = without_buttons(card), VIEW_ONLY
        elif offers_approval(card) and await self._requested(card.run_id, actor):
            card = without_own_approval(card)
        users = refresh_users(responder_ids(roles), self._pressers.of(card.incident_id))
        chart = await self._charts.url(card.incident_id)
        return render_card(card, notice, users, footnote, chart)

    async def _requested(self, run_id: int, actor: str) -> bool:
        """Whether ``actor`` requested run ``run_id`` (who may not approve it too)."""
        remediation = getattr(self._operations, "remediation", None)
        if remediation is None:
            return False
        try:
            run = await remediation.run(run_id)
        except BotError:
            return False
        return bool(run.requested_by == actor)
