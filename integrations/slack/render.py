"""Pure renderers: a Card, a timeline reply and a storm digest as Slack messages.

Each returns ``{"text": …, "blocks": […]}``: ``text`` is the plain fallback Slack shows in
notifications and to screen readers, ``blocks`` the Block Kit layout. Golden files in
``tests/fixtures/slack/`` pin the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.card import ActionKind, Card, mute_phrase
from bot.domain.hits import Severity
from bot.ports import DigestLine
from integrations.slack.blockkit import (
    MAX_FALLBACK,
    MAX_SECTION,
    MORE,
    Block,
    button,
    clip,
    context,
    date,
    escape,
    fields,
    fit,
    header,
    link,
    mentions,
    section,
)

SEVERITY_EMOJI = {
    Severity.CRITICAL.value: ":rotating_light:",
    Severity.HIGH.value: ":red_circle:",
    Severity.MEDIUM.value: ":large_orange_circle:",
    Severity.LOW.value: ":large_yellow_circle:",
    Severity.INFO.value: ":large_blue_circle:",
}
EVIDENCE_LINE = 500
ACTIONS_BLOCK = "incident-actions"

Message = dict[str, Any]


def console_link(console_url: str, incident_id: int) -> str:
    return f"{console_url.rstrip('/')}/incidents/{incident_id}"


def card_version(card: Card) -> str:
    """What the person saw when they pressed a button: the state and who changed it when.

    Carried in every button's value, so two presses of the same button on the same card are
    recognisable as one, while a press on the card after the next change is a new one.
    """
    return str(card.version)


RUN_ACTIONS = (ActionKind.APPROVE_RUN, ActionKind.CANCEL_RUN)


def button_value(card: Card, kind: ActionKind | None = None) -> str:
    """``<incident>:<version>``, and ``:<run id>`` on the buttons that act on a run."""
    value = f"{card.incident_id}:{card_version(card)}"
    return f"{value}:{card.run_id}" if kind in RUN_ACTIONS and card.run_id else value


def render_card(card: Card, console_url: str) -> Message:
    more = console_link(console_url, card.incident_id)
    emoji = SEVERITY_EMOJI.get(card.severity, ":white_circle:")
    blocks: list[Block] = [
        header(f"{emoji} {card.human_id} {card.title}"),
        fields(
            [
                ("Service", escape(card.service) or "—"),
                ("Host", escape(card.host) or "—"),
                ("Status", mentions(escape(card.status_line))),
                ("Severity", card.severity),
                ("Alerts · hits", f"{card.alert_count} · {card.hit_count}"),
                ("First · last seen", f"{date(card.first_seen)} · {date(card.last_seen)}"),
            ]
        ),
    ]
    if card.muted:
        why = escape(mute_phrase(card.muted_by))
        blocks.append(context(f":mute: Muted by {why}: changes are not announced"))
    blocks.append(section(f":mag: {escape(card.rca_line)}", more))
    if card.evidence:
        blocks.append(_evidence(card, more))
    if card.remediation_line:
        blocks.append(section(f":wrench: {mentions(escape(card.remediation_line))}", more))
    if card.similar_line:
        blocks.append(context(f":repeat: {escape(card.similar_line)}"))
    if card.links:
        blocks.append(context("  ·  ".join(link(x.url, x.label) for x in card.links)))
    # Slack cannot grey out a button: one that would be refused gives its place to the reason
    blocks.extend(
        context(f":no_entry: {escape(a.label)} unavailable: {mentions(escape(a.refused))}")
        for a in card.actions
        if a.refused
    )
    blocks.append(_actions(card, more))
    return {"text": _card_fallback(card), "blocks": fit(blocks, more)}


def _card_fallback(card: Card) -> str:
    text = f"{card.human_id} [{card.severity}] {card.title}: {card.status_line}"
    return clip(mentions(escape(text)), MAX_FALLBACK)


def _evidence(card: Card, more_url: str) -> Block:
    """The top evidence lines (already redacted) in a code block, clipped to the section."""
    tail = f"\n{link(more_url, MORE)}"
    budget = MAX_SECTION - len("*Evidence*\n``````") - len(tail)
    lines: list[str] = []
    used = 0
    for item in card.evidence:
        text = clip(f"{item.time:%H:%M:%S}  {item.text}", EVIDENCE_LINE)
        text = escape(text).replace("```", "``\u200b`")
        if used + len(text) + 1 > budget:
            break
        lines.append(text)
        used += len(text) + 1
    cut = len(lines) < len(card.evidence) or any(
        len(f"{e.time:%H:%M:%S}  {e.text}") > EVIDENCE_LINE for e in card.evidence
    )
    body = "\n".join(lines) if lines else "(evidence too long to show here)"
    return section(f"*Evidence*\n```{body}```" + (tail if cut else ""))


def _actions(card: Card, view_url: str) -> Block:
    elements = []
    for action in card.actions:
        if action.refused:
            continue
        if action.kind is ActionKind.VIEW:
            elements.append(button(action.kind.value, action.label, url=view_url))
        else:
            value = button_value(card, action.kind)
            elements.append(button(action.kind.value, action.label, value, action.style))
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements[:25]}


def render_reply(text: str) -> Message:
    """A timeline line posted in the card's thread (``acknowledged by slack:U1`` …)."""
    shown = clip(mentions(escape(text)), MAX_SECTION)
    return {"text": shown, "blocks": [section(shown)]}


def render_digest(lines: Sequence[DigestLine], console_url: str) -> Message:
    """The storm digest: incidents still waiting for their own card, most severe first."""
    more = console_url.rstrip("/") + "/"
    if not lines:
        done = ":white_check_mark: Storm over: every incident has its own card now."
        return {"text": done, "blocks": [section(done)]}
    count = len(lines)
    title = f":ocean: Storm: {count} incident{'s' if count != 1 else ''} waiting for a card"
    blocks: list[Block] = [header(title)]
    for severity in Severity:
        group = [x for x in lines if x.severity == severity.value]
        if group:
            blocks.extend(_digest_sections(severity, group, more))
    blocks.append(
        context(
            "Cards follow as Slack's rate limit allows; critical incidents are posted at once. "
            + link(more, "Open the console")
        )
    )
    return {"text": title, "blocks": fit(blocks, more)}


def _digest_sections(severity: Severity, lines: list[DigestLine], more_url: str) -> list[Block]:
    emoji = SEVERITY_EMOJI[severity.value]
    heading = f"{emoji} *{severity.value.capitalize()}* ({len(lines)})"
    out: list[Block] = []
    text = heading
    for line in lines:
        entry = f"\n• {link(line.url, line.human_id)} {escape(clip(line.title, 150))}"
        if len(text) + len(entry) > MAX_SECTION:
            out.append(section(text, more_url))
            text = heading + " (continued)"
        text += entry
    out.append(section(text, more_url))
    return out
