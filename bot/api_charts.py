"""``GET /charts/{incident_id}.png?exp=…&sig=…``: an incident's chart for a card to fetch.

Teams loads a card's images itself, without anyone's credentials: the signed, expiring link is
the permission (:mod:`bot.charts.signing`). A forged, altered or expired link is refused with
403 and a line saying which; a link to an incident that does not exist answers 404; a search
that fails or a database that is away answers 503.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from bot.charts.service import Charts
from bot.domain.incident import parse_human_id
from bot.errors import NotFound, TransientError


def make_charts_router(charts: Charts) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/charts/{incident_id}.png")
    async def chart_png(incident_id: str, exp: str = "", sig: str = "") -> Response:
        number = parse_human_id(incident_id)
        if number is None:
            raise NotFound(f"no incident {incident_id!r}")
        try:
            await charts.check_link(number, exp, sig)
            data = await charts.png(number)
        except SQLAlchemyError:
            raise TransientError(
                "the chart cannot be drawn now: the database is unavailable"
            ) from None
        return Response(
            data,
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return router
