"""REST API for postmortems and reports, under /api/v1.

- ``GET /incidents/{id}/postmortem?format=md|json``: a postmortem draft built from the incident's
  audit chain (:mod:`bot.postmortem`); Markdown is served as ``text/markdown``.
- ``GET /report?since=7d``: per rule, per service and noisiest keys over the period
  (:mod:`bot.reports`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from bot import postmortem, reports
from bot.api import incident_number
from bot.auth import Caller
from bot.domain.durations import parse_duration
from bot.errors import PermanentError
from bot.postmortem_md import to_markdown
from bot.wiring import Runtime

#: a report's period: whole minutes, hours, days or weeks
SINCE_PATTERN = r"^[1-9][0-9]{0,3}[mhdw]$"


def period(since: str) -> timedelta:
    """``7d`` -> 7 days; a clear error for anything else."""
    if re.fullmatch(SINCE_PATTERN, since) is None:
        raise PermanentError(f"since: bad period {since!r}: use forms like 24h, 7d, 4w")
    return parse_duration(since)


def report_json(runtime: Runtime, since: timedelta, now: datetime) -> dict[str, Any]:
    return reports.to_json(reports.build(runtime.engine, now - since, now))


def make_reports_router(runtime: Runtime, caller: Any) -> APIRouter:
    """``caller`` is the FastAPI dependency that authenticates and returns a Caller."""
    api = APIRouter(prefix="/api/v1", tags=["postmortems and reports"])
    authenticated = Depends(caller)

    @api.get("/incidents/{incident_id}/postmortem")
    async def incident_postmortem(
        incident_id: str,
        format: Annotated[Literal["md", "json"], Query()] = "md",
        who: Caller = authenticated,
    ) -> Response:
        number = incident_number(incident_id)
        found = await asyncio.to_thread(
            postmortem.build, runtime.engine, number, runtime.clock.now()
        )
        if format == "json":
            return JSONResponse(postmortem.to_json(found))
        return Response(to_markdown(found), media_type="text/markdown; charset=utf-8")

    @api.get("/report")
    async def report(
        since: Annotated[str, Query(max_length=5, pattern=SINCE_PATTERN)] = "7d",
        who: Caller = authenticated,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(report_json, runtime, period(since), runtime.clock.now())

    return api
