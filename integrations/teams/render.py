"""Pure renderers: the neutral :class:`~bot.domain.card.Card` as an Adaptive Card 1.5.

Text that may come from logs, rules or the RCA engine (title, facts, evidence, RCA) goes into
``TextRun`` elements, which Teams shows verbatim: a log line cannot smuggle a markdown link
into a card. Buttons are ``Action.Execute`` (Universal Actions) whose ``verb`` is the
:class:`~bot.domain.card.ActionKind` value and whose ``data`` names the incident and the card
revision the person was looking at. Suppress and Resolve reveal their inputs with
``Action.ShowCard``. With ``refresh_for``, the card carries a ``refresh`` clause (an
``Action.Execute`` with the verb ``refresh`` and those ``userIds``): Teams asks the bot for each
of those people's own view of it (see :mod:`integrations.teams.views`).

Teams refuses messages over about 28 KB. A card stays under :data:`MAX_CARD_BYTES`: long
evidence lines and RCA text are cut, then evidence lines dropped, and a visible
"…more in the console" link says so. Rendering never fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.domain.card import ActionKind, Card, CardAction, Link, mute_phrase

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 24_000  # the card's JSON; the activity around it needs a little more
EVIDENCE_CHARS = 400
RCA_CHARS = 1_500
TITLE_CHARS = 200
SHORT_RCA_CHARS = 200
MORE = "…more in the console"
CONSOLE_LINK = "Open in console"
CHART_ALT = "Chart of the values the rule compared around this incident, and when it fired"

SEVERITY_STYLE = {
    "critical": "attention",
    "high": "warning",
    "medium": "accent",
    "low": "good",
    "info": "default",
}
BUTTON_STYLE = {"primary": "positive", "danger": "destructive", "default": "default"}
SUPPRESS_CHOICES = (("30 minutes", "30m"), ("1 hour", "1h"), ("4 hours", "4h"), ("24 hours", "24h"))
CUSTOM = "custom"
RUN_ACTIONS = (ActionKind.APPROVE_RUN, ActionKind.CANCEL_RUN)
REFRESH_VERB = "refresh"  # Teams asks for a person's own view of a card with this verb
MAX_REFRESH_USERS = 60  # Teams refreshes a card for at most 60 named people

Json = dict[str, Any]


def card_revision(card: Card) -> str:
    """A short token that changes whenever the card's state does (sent back with each click)."""
    return str(card.version)


def render_card(
    card: Card,
    notice: str = "",
    refresh_for: Sequence[str] = (),
    footnote: str = "",
    chart_url: str = "",
) -> Json:
    """The incident card; ``notice`` (a refusal, for example) is shown above it when given,
    ``footnote`` (why there are no buttons, for example) below it; ``refresh_for`` are the
    Teams user ids the card refreshes for (at most :data:`MAX_REFRESH_USERS`); ``chart_url``
    is the chart image Teams fetches (shown under the root cause line)."""
    cut = _clip(card)
    content = _card(cut, notice, truncated=cut != card, footnote=footnote)
    if chart_url:  # under the root cause line: notice, header, facts, root cause, chart
        at = (1 if notice else 0) + 1 + len(_facts(cut)) + 1
        content["body"].insert(at, chart_image(chart_url))
    dropped = list(cut.evidence)
    while _size(content) > MAX_CARD_BYTES and dropped:
        dropped.pop()
        content = _card(replace(cut, evidence=tuple(dropped)), notice, True, footnote)
    if _size(content) > MAX_CARD_BYTES:
        smaller = replace(
            cut,
            evidence=(),
            rca_line=_shorten(cut.rca_line, SHORT_RCA_CHARS),
            title=_shorten(cut.title, SHORT_RCA_CHARS),
        )
        content = _card(smaller, _shorten(notice, SHORT_RCA_CHARS), True, footnote)
    users = list(dict.fromkeys(u for u in refresh_for if u))[:MAX_REFRESH_USERS]
    if users:
        content["refresh"] = {
            "action": {
                "type": "Action.Execute",
                "title": "Refresh",
                "verb": REFRESH_VERB,
                "data": {"incident_id": card.incident_id, "version": card_revision(card)},
            },
            "userIds": users,
        }
    return content


def chart_image(url: str) -> Json:
    """The chart as an Adaptive Card ``Image`` (full width, with its alt text)."""
    return {
        "type": "Image",
        "url": url,
        "altText": CHART_ALT,
        "size": "Stretch",
        "spacing": "Medium",
    }


def render_lines(title: str, lines: Sequence[str], footer: str = "") -> Json:
    """A plain card of one heading and lines of text (lists, rules, help)."""
    body: list[Json] = [_heading(title)]
    body.extend(_plain(line, spacing="Small") for line in lines)
    if footer:
        body.append(_plain(footer, subtle=True, spacing="Medium"))
    return _envelope(body, [])


def render_notice(text: str) -> Json:
    """A one-line card for an answer that has no incident card to show (unknown incident)."""
    return _envelope([_notice_block(text)], [])


# the card ---------------------------------------------------------------------------------


def _clip(card: Card) -> Card:
    evidence = tuple(replace(ev, text=_shorten(ev.text, EVIDENCE_CHARS)) for ev in card.evidence)
    return replace(
        card,
        title=_shorten(card.title, TITLE_CHARS),
        service=_shorten(card.service, TITLE_CHARS),
        host=_shorten(card.host, TITLE_CHARS),
        status_line=_shorten(card.status_line, RCA_CHARS),
        rca_line=_shorten(card.rca_line, RCA_CHARS),
        evidence=evidence,
    )


def _card(card: Card, notice: str, truncated: bool, footnote: str = "") -> Json:
    body: list[Json] = []
    if notice:
        body.append(_notice_block(notice))
    body.append(_header(card))
    body.extend(_fact(name, value) for name, value in _facts(card))
    body.append(_plain(card.rca_line, spacing="Medium"))
    if card.remediation_line:
        body.append(_plain(card.remediation_line, spacing="Small"))
    if card.similar_line:
        body.append(_plain(card.similar_line, subtle=True, spacing="Small"))
    body.extend(
        _plain(f"{a.label} unavailable: {a.refused}", subtle=True, spacing="Small")
        for a in card.actions
        if a.refused
    )
    if card.evidence:
        body.append(_label("Evidence"))
        body.extend(
            _plain(f"{ev.time:%H:%M:%S} {ev.text}", monospace=True, spacing="None")
            for ev in card.evidence
        )
    if truncated:
        body.append(_more(card.links))
    if card.links:
        body.append({"type": "ActionSet", "actions": [_open_url(link) for link in card.links]})
    if footnote:
        body.append(_plain(footnote, subtle=True, spacing="Medium"))
    buttons = [a for a in card.actions if a.kind is not ActionKind.VIEW]  # the console link views
    return _envelope(body, [_button(card, action) for action in buttons])


def _facts(card: Card) -> list[tuple[str, str]]:
    alerts = f"{card.alert_count} alert{'s' if card.alert_count != 1 else ''}"
    events = f"{card.hit_count} event{'s' if card.hit_count != 1 else ''}"
    facts = [
        ("Service", card.service or "—"),
        ("Host", card.host or "—"),
        ("Status", card.status_line),
        ("Seen", f"{alerts}, {events}"),
        ("First seen", f"{card.first_seen:%Y-%m-%d %H:%M:%S} UTC"),
        ("Last seen", f"{card.last_seen:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    if card.muted:
        why = mute_phrase(card.muted_by)
        facts.append(("Muted", f"{why} covers this incident: no pages, no new posts"))
    return facts


def _header(card: Card) -> Json:
    style = SEVERITY_STYLE.get(card.severity, "default")
    return {
        "type": "Container",
        "style": style,
        "bleed": True,
        "items": [
            {
                "type": "TextBlock",
                "text": f"{card.severity.upper()} · {card.human_id} · {card.state.value}",
                "size": "Small",
                "weight": "Bolder",
                "wrap": True,
            },
            {
                "type": "RichTextBlock",
                "inlines": [
                    {"type": "TextRun", "text": card.title, "size": "Large", "weight": "Bolder"}
                ],
            },
        ],
    }


def _fact(name: str, value: str) -> Json:
    return {
        "type": "ColumnSet",
        "spacing": "None",
        "columns": [
            {
                "type": "Column",
                "width": "90px",
                "items": [{"type": "TextBlock", "text": name, "isSubtle": True, "wrap": True}],
            },
            {"type": "Column", "width": "stretch", "items": [_plain(value)]},
        ],
    }


def _more(links: Sequence[Link]) -> Json:
    console = next((link for link in links if link.label == CONSOLE_LINK), None)
    run: Json = {"type": "TextRun", "text": MORE, "italic": True}
    if console is not None:
        run["selectAction"] = {"type": "Action.OpenUrl", "url": console.url}
    return {"type": "RichTextBlock", "inlines": [run]}


# buttons ----------------------------------------------------------------------------------


def _button(card: Card, action: CardAction) -> Json:
    execute = _execute(card, action)
    if action.kind is ActionKind.SUPPRESS:
        return _show_card(action, _suppress_inputs(), execute)
    if action.kind is ActionKind.RESOLVE:
        return _show_card(action, _resolve_inputs(), execute)
    return execute


def _execute(card: Card, action: CardAction) -> Json:
    data: Json = {"incident_id": card.incident_id, "version": card_revision(card)}
    if action.kind in RUN_ACTIONS and card.run_id:
        data["run_id"] = card.run_id
    execute: Json = {
        "type": "Action.Execute",
        "title": action.label,
        "verb": action.kind.value,
        "data": data,
        "style": BUTTON_STYLE.get(action.style, "default"),
    }
    if action.refused:  # shown greyed out; the line above the buttons says why
        execute["isEnabled"] = False
    return execute


def _show_card(action: CardAction, inputs: list[Json], execute: Json) -> Json:
    return {
        "type": "Action.ShowCard",
        "title": action.label,
        "card": {"type": "AdaptiveCard", "body": inputs, "actions": [execute]},
    }


def _suppress_inputs() -> list[Json]:
    choices = [{"title": title, "value": value} for title, value in SUPPRESS_CHOICES]
    choices.append({"title": "Custom…", "value": CUSTOM})
    return [
        {
            "type": "Input.ChoiceSet",
            "id": "duration",
            "label": "Suppress for",
            "style": "compact",
            "value": "1h",
            "choices": choices,
        },
        {
            "type": "Input.Text",
            "id": "custom_duration",
            "label": "Custom duration (with Custom…)",
            "placeholder": "for example 2h30m",
            "maxLength": 32,
        },
        {
            "type": "Input.Text",
            "id": "reason",
            "label": "Reason",
            "placeholder": "why this incident can wait",
            "isRequired": True,
            "errorMessage": "Say why: a suppression needs a reason",
            "maxLength": 2000,
        },
    ]


def _resolve_inputs() -> list[Json]:
    return [
        {
            "type": "Input.Text",
            "id": "note",
            "label": "Note (optional)",
            "placeholder": "what fixed it",
            "isMultiline": True,
            "maxLength": 2000,
        }
    ]


# building blocks --------------------------------------------------------------------------


def _envelope(body: list[Json], actions: list[Json]) -> Json:
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def _notice_block(text: str) -> Json:
    return {
        "type": "Container",
        "style": "attention",
        "items": [_plain(text)],
    }


def _heading(text: str) -> Json:
    return {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": text, "size": "Medium", "weight": "Bolder"}],
    }


def _label(text: str) -> Json:
    return {"type": "TextBlock", "text": text, "weight": "Bolder", "spacing": "Medium"}


def _plain(
    text: str, monospace: bool = False, subtle: bool = False, spacing: str = "Default"
) -> Json:
    """Text shown exactly as given (a ``TextRun`` is never read as markdown)."""
    run: Json = {"type": "TextRun", "text": text}
    if monospace:
        run["fontType"] = "Monospace"
        run["size"] = "Small"
    if subtle:
        run["isSubtle"] = True
    block: Json = {"type": "RichTextBlock", "inlines": [run]}
    if spacing != "Default":
        block["spacing"] = spacing
    return block


def _open_url(link: Link) -> Json:
    return {"type": "Action.OpenUrl", "title": link.label, "url": link.url}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _size(content: Json) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode())
