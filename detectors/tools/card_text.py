"""An incident card as plain text, the way the rule tools print it."""

from __future__ import annotations

from bot.domain.card import Card

EVIDENCE_WIDTH = 160


def card_text(card: Card) -> str:
    """The card's content, one fact per line, boxed with a left rule."""
    where = f"service: {card.service or '-'}   host: {card.host or '-'}"
    lines = [
        f"[{card.severity.upper()}] {card.title}",
        f"{where}   events: {card.hit_count}",
        card.status_line,
        f"first seen {card.first_seen:%Y-%m-%d %H:%M:%S} UTC   "
        f"last seen {card.last_seen:%Y-%m-%d %H:%M:%S} UTC",
        card.rca_line,
    ]
    if card.muted:
        lines.append("notifications muted by a silence")
    if card.evidence:
        lines.append("evidence:")
        lines += [f"  {item.time:%H:%M:%S} {_clip(item.text)}" for item in card.evidence]
    lines += [f"{link.label}: {link.url}" for link in card.links]
    lines.append("  ".join(f"[{action.label}]" for action in card.actions))
    return "\n".join(f"| {line}" if line else "|" for line in lines)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EVIDENCE_WIDTH else flat[: EVIDENCE_WIDTH - 1] + "…"
