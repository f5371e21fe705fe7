"""What the bot answers a person privately (ephemeral messages), as mrkdwn text. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.incident import Incident
from bot.errors import BotError, Conflict, NotFound, PolicyViolation
from bot.operations import RuleStatus, SilenceInfo
from integrations.slack.blockkit import MAX_SECTION, clip, date, escape, link, mentions
from integrations.slack.commands import Scope
from integrations.slack.render import SEVERITY_EMOJI, console_link

SCOPE_TITLE = {
    Scope.ACTIVE: "not resolved",
    Scope.OPEN: "open",
    Scope.ACKED: "acknowledged",
    Scope.SUPPRESSED: "suppressed",
    Scope.RESOLVED: "resolved",
    Scope.ALL: "most recent",
}


def incident_list(incidents: Sequence[Incident], scope: Scope, console_url: str) -> str:
    if not incidents:
        return f"No incidents {SCOPE_TITLE[scope]} right now. :relieved:"
    lines = [f"*Incidents {SCOPE_TITLE[scope]}* ({len(incidents)} shown)"]
    for incident in incidents:
        emoji = SEVERITY_EMOJI.get(incident.severity.value, ":white_circle:")
        url = console_link(console_url, incident.id)
        who = f" by {incident.state_changed_by}" if incident.state_changed_by else ""
        lines.append(
            f"{emoji} {link(url, incident.human_id)} {escape(clip(incident.title, 120))} · "
            f"{escape(incident.service)} · {incident.state.value}{mentions(escape(who))}"
        )
    return clip("\n".join(lines), MAX_SECTION)


def rule_states(rules: Sequence[RuleStatus]) -> str:
    if not rules:
        return "No detection rules are loaded."
    lines = [f"*Detection rules* ({len(rules)})"]
    for rule in rules:
        if not rule.enabled:
            state = ":white_circle: disabled"
        elif rule.consecutive_failures:
            error = escape(clip(rule.last_error, 160))
            state = f":warning: failing ({rule.consecutive_failures} in a row): {error}"
        elif rule.last_run_at is None:
            state = ":hourglass: not run yet"
        else:
            state = f":large_green_circle: last run {date(rule.last_run_at)}, {rule.last_hits} hits"
        lines.append(f"• `{escape(rule.id)}` {escape(clip(rule.title, 80))}: {state}")
    return clip("\n".join(lines), MAX_SECTION)


def silence_created(info: SilenceInfo) -> str:
    matchers = " ".join(f"`{escape(str(m))}`" for m in info.matchers)
    covered = (
        "It covers no incident that is active right now."
        if info.matching_now == 0
        else f"It covers *{info.matching_now}* active incident"
        + ("s" if info.matching_now != 1 else "")
        + " right now."
    )
    return (
        f":shushing_face: Silence #{info.id} on {matchers} until {date(info.ends_at)}: "
        f"{escape(info.reason)}\n{covered}"
    )


def done(message: str, human_id: str) -> str:
    text = mentions(escape(message))
    return text if human_id in message else f"{human_id}: {text}"


def refused(error: BotError) -> str:
    """A refusal, worded for the person who asked."""
    text = escape(str(error))
    if isinstance(error, PolicyViolation):
        return f":no_entry: Not done: {text}. Ask an admin if you should have it."
    if isinstance(error, NotFound):
        return f":grey_question: {text}"
    if isinstance(error, Conflict):
        return f":warning: {mentions(text)}"
    return f":x: {text}"


def failed() -> str:
    return ":x: Something went wrong on our side; nothing was changed. Please try again."
