"""PagerDuty: pages out (Events API v2), changes back in (webhooks v3), who is on call (REST).

::

    paging = {e.routing for e in settings.escalation if e.after is not None}
    pd = load_pagerduty_settings(channels=paging)
    pager = PagerDutyPager(pd)                                  # a bot.ports.Pager
    app.include_router(webhook_router(pd, runtime.operations, runtime.engine, runtime.clock))
    oncall = OnCallLookup(pd)                                   # with PAGERDUTY_API_TOKEN

Each name is imported on first use (:func:`integrations.lazy_exports`): the settings alone do
not load the pagerduty library.
"""

from typing import TYPE_CHECKING

from integrations import lazy_exports

if TYPE_CHECKING:
    from integrations.pagerduty.oncall import OnCall, OnCallLookup, on_call_line
    from integrations.pagerduty.pager import PagerDutyPager, event_body
    from integrations.pagerduty.settings import PagerDutySettings, load_pagerduty_settings
    from integrations.pagerduty.webhooks import PATH as WEBHOOK_PATH
    from integrations.pagerduty.webhooks import webhook_router
else:
    __getattr__ = lazy_exports(
        __name__,
        {
            "OnCall": "oncall",
            "OnCallLookup": "oncall",
            "on_call_line": "oncall",
            "PagerDutyPager": "pager",
            "event_body": "pager",
            "PagerDutySettings": "settings",
            "load_pagerduty_settings": "settings",
            "WEBHOOK_PATH": "webhooks:PATH",
            "webhook_router": "webhooks",
        },
    )

__all__ = [
    "WEBHOOK_PATH",
    "OnCall",
    "OnCallLookup",
    "PagerDutyPager",
    "PagerDutySettings",
    "event_body",
    "load_pagerduty_settings",
    "on_call_line",
    "webhook_router",
]
