"""REST API for maintenance windows under /api/v1 (list for anyone signed in; add and remove
need the responder role and are audited).

``POST /maintenance`` takes a :class:`bot.maintenance.WindowSpec`::

    {"name": "sunday-patching", "days": "sun", "start": "02:00", "duration": "4h",
     "timezone": "Europe/Berlin", "matchers": ["service=db*"], "reason": "OS patches"}

or ``"cron": "0 2 * * sun"`` instead of ``days`` and ``start``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from bot.auth import Caller
from bot.maintenance import Maintenance, WindowSpec

SURFACE = "api"


def make_maintenance_router(runtime: Any, caller: Any) -> APIRouter:
    """``runtime``: the :class:`bot.wiring.Runtime`; ``caller``: the authenticating dependency."""
    api = APIRouter(prefix="/api/v1", tags=["maintenance"])
    authenticated = Depends(caller)

    def service() -> Maintenance:
        found: Maintenance = runtime.operations.maintenance
        return found

    @api.get("/maintenance")
    async def list_windows(who: Caller = authenticated) -> dict[str, Any]:
        return {"windows": [w.as_json() for w in await service().list()]}

    @api.post("/maintenance", status_code=201)
    async def add_window(body: WindowSpec, who: Caller = authenticated) -> dict[str, Any]:
        made = await service().add(body, who.identity, SURFACE)
        return made.as_json()

    @api.delete("/maintenance/{ref}")
    async def remove_window(ref: str, who: Caller = authenticated) -> dict[str, Any]:
        gone = await service().remove(ref, who.identity, SURFACE)
        return {"deleted": gone.name, "id": gone.id}

    return api


__all__ = ["make_maintenance_router"]
