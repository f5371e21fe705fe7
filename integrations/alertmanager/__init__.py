"""Alertmanager's API v2, as far as Prometheus, Grafana and amtool use it: ``POST`` and ``GET
/api/v2/alerts``, ``GET /api/v2/status``. The parts that are not wire format live in
:mod:`bot.push`."""

from integrations.alertmanager.api import alerts_router
from integrations.alertmanager.wire import ParseFailure, parse_alerts

__all__ = ["ParseFailure", "alerts_router", "parse_alerts"]
