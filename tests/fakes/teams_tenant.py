"""The Teams side of a bot in another process (tests/cluster.py): the login fake
(tests/fakes/entra.py) for its tokens, a Bot Connector fake that takes only those tokens, one
team channel the bot is added to, and a person pressing the buttons of the cards in it.

The bot takes unsigned activities (``TEAMS_ANONYMOUS``, loopback only): the SDK fetches the
Bot Connector's keys with urllib, which a process can point at the login fake only through
``HTTPS_PROXY``, and the Slack SDK would send its own calls there too (tests/fakes/entra.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.entra import FakeEntra
from tests.fakes.teams import APP_ID, TENANT_ID, running_connector, teams_activity

APP_SECRET = "fake-teams-app-secret-for-tests"
PRESSER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"  # who presses in the recorded invoke activity
# the console (the API's caller on loopback) stays admin, the person in Teams is a responder
ROLES = f"""default_role: viewer
roles:
  admin: [console:local]
  responder: [teams:{PRESSER}]
"""


class TeamsTenant:
    """The login fake, a Bot Connector (:func:`~tests.fakes.teams.running_connector`, taking
    only the tokens the login fake issued) and one team channel, ``sre/general``, the bot is
    added to by :meth:`join` (the ``conversationUpdate`` Teams sends when the app is added to
    a team)."""

    CHANNEL = "sre/general"

    def __init__(self, folder: Path, stack: ExitStack, timeout_s: float = 2.0) -> None:
        self.entra = stack.enter_context(FakeEntra(folder, APP_ID, APP_SECRET, TENANT_ID))
        self.roles_file = folder / "roles.yaml"
        self.roles_file.write_text(ROLES)
        self.connector = stack.enter_context(running_connector(accept=self.entra.issued))
        self.timeout_s = timeout_s
        self.joined = False

    def settings(self) -> dict[str, str]:
        """The bot's ``TEAMS_…`` settings, what it needs to reach the login service, and the
        roles that let the person in the channel acknowledge."""
        return {
            "BOT_ROLES_FILE": str(self.roles_file),
            "TEAMS_APP_ID": APP_ID,
            "TEAMS_APP_PASSWORD": APP_SECRET,
            "TEAMS_TENANT_ID": TENANT_ID,
            "TEAMS_DEFAULT_CHANNEL": self.CHANNEL,
            "TEAMS_TIMEOUT": f"{self.timeout_s:g}",
            "TEAMS_ANONYMOUS": "true",
            **self.entra.env(),
        }

    def send(self, bot_url: str, activity: dict[str, Any], timeout: float = 10.0) -> httpx.Response:
        """POST ``activity`` to the bot's /api/messages, as the Bot Connector would."""
        return httpx.post(f"{bot_url}/api/messages", json=activity, timeout=timeout)

    def join(self, bot_url: str) -> None:
        """Add the app to the team (once): the bot stores where to post its cards."""
        if self.joined:
            return
        added = teams_activity("conversation_update_team_added", self.connector.url)
        answer = self.send(bot_url, added)
        if answer.status_code not in (200, 201, 202):
            raise AssertionError(f"the bot refused to join the team: {answer.status_code}")
        self.joined = True

    def card_posts(self, titles: Iterable[str]) -> dict[str, list[float]]:
        """When (monotonic) each title's card was posted to the channel (new messages only:
        updates and replies are not cards posted)."""
        wanted = list(titles)
        posts: dict[str, list[float]] = {}
        for call in self.connector.of_kind("post"):
            summary = str(call.body.get("summary") or "")
            for title in wanted:
                if summary.endswith(title):
                    posts.setdefault(title, []).append(call.at)
        return posts

    def card_of(self, incident_id: int, verb: str) -> tuple[str, str, dict[str, Any]] | None:
        """(conversation id, message id, the button's data) of the ``verb`` button on the
        incident's card as the channel shows it last, or None when no card has it."""
        found = None
        for call in self.connector.calls[:]:
            if call.kind not in ("post", "update") or call.card is None:
                continue
            data = _button(call.card, verb, incident_id)
            message_id = call.answer_id if call.kind == "post" else call.activity_id
            if data is not None and message_id:
                found = (call.conversation_id, message_id, data)
        return found

    def press(
        self, bot_url: str, incident_id: int, verb: str, activity_id: str
    ) -> httpx.Response | None:
        """Press ``verb`` on the incident's card (an ``Action.Execute`` invoke, whose
        ``activity_id`` Teams keeps when it sends the same press again); None when the channel
        shows no such button."""
        found = self.card_of(incident_id, verb)
        if found is None:
            return None
        conversation_id, message_id, data = found
        invoke = teams_activity("invoke_action_execute", self.connector.url)
        invoke["conversation"]["id"] = f"{conversation_id};messageid={message_id}"
        invoke.update(
            id=activity_id,
            replyToId=message_id,
            value={
                "action": {"type": "Action.Execute", "verb": verb, "data": data},
                "trigger": "manual",
            },
        )
        return self.send(bot_url, invoke, timeout=5.0)


def _button(card: Any, verb: str, incident_id: int) -> dict[str, Any] | None:
    """The data of the card's ``Action.Execute`` named ``verb`` for the incident, if any."""
    if isinstance(card, dict):
        data = card.get("data")
        wanted = card.get("type") == "Action.Execute" and card.get("verb") == verb
        if wanted and isinstance(data, dict) and data.get("incident_id") == incident_id:
            return data
        children: list[Any] = list(card.values())
    elif isinstance(card, list):
        children = card
    else:
        return None
    for child in children:
        found = _button(child, verb, incident_id)
        if found is not None:
            return found
    return None
