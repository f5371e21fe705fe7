"""What the settings say before anything is built: each integration's own settings, where
incidents go (routes) and when they page (escalation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.pipeline.escalate import EscalationPolicy, EscalationRule
from bot.pipeline.notify import Router, RouteRule, Target
from bot.ports import Pager
from bot.settings import Settings
from integrations.pagerduty import PagerDutySettings, load_pagerduty_settings
from integrations.slack import SlackSettings, load_slack_settings
from integrations.splunk import SplunkSettings, load_splunk_settings
from integrations.teams import TeamsSettings, load_teams_settings


@dataclass(frozen=True, slots=True)
class IntegrationSettings:
    """Each integration's own settings (``SPLUNK_*``, ``PAGERDUTY_*``, ``TEAMS_*``, ``SLACK_*``);
    Splunk's and PagerDuty's only when in use."""

    splunk: SplunkSettings | None
    pagerduty: PagerDutySettings | None
    teams: TeamsSettings
    slack: SlackSettings

    @classmethod
    def load(
        cls, settings: Settings, teams: TeamsSettings | None, slack: SlackSettings | None
    ) -> IntegrationSettings:
        """Raises ConfigError naming each problem; ``teams`` and ``slack`` stand in (tests)."""
        splunk = load_splunk_settings() if settings.search_backend == "splunk" else None
        pagerduty: PagerDutySettings | None = None
        if PagerDutySettings().enabled:
            paging = {e.routing for e in settings.escalation if e.after is not None}
            pagerduty = load_pagerduty_settings(channels=paging)
        teams = (teams or load_teams_settings()).validate_for_host(settings.http_host)
        return cls(splunk, pagerduty, teams, slack or load_slack_settings())

    def secret_values(self) -> list[str]:
        return [
            *self.teams.secret_values(),
            *self.slack.secret_values(),
            *(self.splunk.secret_values() if self.splunk else []),
            *(self.pagerduty.secret_values() if self.pagerduty else []),
        ]


def build_router(settings: Settings, defaults: Mapping[str, str]) -> Router:
    """Routes from settings for the surfaces in use; ``defaults`` maps each surface to its
    default channel (empty: only routed incidents go there)."""
    rules = tuple(
        RouteRule(
            Target(r.surface, r.channel),
            frozenset(r.severity),
            frozenset(r.category),
            frozenset(r.service),
        )
        for r in settings.routes
        if r.surface in defaults
    )
    return Router(rules, tuple(Target(name, ch) for name, ch in defaults.items() if ch))


def build_escalation(settings: Settings, pagers: Mapping[str, Pager]) -> EscalationPolicy | None:
    """The escalation policy, when a pager is set up (the first one configured pages)."""
    if not pagers:
        return None
    rules = tuple(
        EscalationRule(
            e.after, e.routing, frozenset(e.severity), frozenset(e.category), frozenset(e.service)
        )
        for e in settings.escalation
    )
    return EscalationPolicy(next(iter(pagers)), rules)
