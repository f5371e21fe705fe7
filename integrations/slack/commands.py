"""The slash command's language (shared with every chat surface: :mod:`bot.textcommands`) and
its help as Slack shows it."""

from __future__ import annotations

from bot.textcommands import (
    SUMMARY,
    USAGE,
    ChatRequest,
    Scope,
    UsageError,
    Verb,
    parse,
)

SlashRequest = ChatRequest


def help_text(command: str = "/incident", unknown: str = "") -> str:
    lines = [f"I don't know `{unknown}`. " if unknown else ""]
    lines[0] += f"*{command}* works on incidents from here:"
    for verb, usage in USAGE.items():
        lines.append(f"• `{command} {usage}`: {SUMMARY[verb]}")
    return "\n".join(lines)


__all__ = ["USAGE", "Scope", "SlashRequest", "UsageError", "Verb", "help_text", "parse"]
