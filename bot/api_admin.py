"""REST API for remediation policy and the audit chain, under /api/v1.

- ``GET /config`` (any caller), ``PUT /config`` (admin): every category, the kill switch and
  ``max_concurrent_resolutions`` at once.
- ``GET /config/category/{category}``, ``PUT /config/category/{category}`` (admin): one
  category's policy; fields left out keep their value. Unknown category: 404 naming the six;
  a bad body: 400 naming the field, like every other endpoint.
- ``GET /config/kill-switch`` (any caller), ``POST /config/kill-switch/activate`` and
  ``/deactivate`` (admin, ``{"reason": ...}``).
- ``GET /config/playbooks`` (any caller): playbooks turned off and why;
  ``POST /config/playbooks/{id}/enable`` and ``/disable`` (admin, ``{"reason": ...}``): turn one
  back on after the circuit breaker opened, or off by hand.
- ``GET /audit`` with filters, newest first, paged by ``cursor`` (or ``offset``), and
  ``GET /audit/incident/{id}``: one incident's whole chain, oldest first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import Connection, Engine, func, select

from bot.api import audit_json, incident_number
from bot.auth import Caller
from bot.authz import Role
from bot.errors import NotFound
from bot.openapi import MAX_INT, Timestamp
from bot.store import audit
from bot.store.breakers import disable_playbook, disabled_playbooks, enable_playbook
from bot.store.repo import INCIDENTS
from bot.store.runtime_config import (
    DEFAULT_MAX_CONCURRENT,
    CategoryUpdate,
    KillSwitch,
    change_kill_switch,
    check_category,
    describe_validation,
    read_categories,
    read_category,
    read_kill_switch,
    read_max_concurrent,
    save_category_in,
    save_max_concurrent_in,
)
from bot.wiring import Runtime

AUDIT = audit.AUDIT
Model = TypeVar("Model", bound=BaseModel)


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class KillSwitchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: StrictBool
    reason: str = Field(min_length=1, max_length=2000)


class ConfigBody(BaseModel):
    """``PUT /config``: any of the three parts; categories by name, each a partial update."""

    model_config = ConfigDict(extra="forbid")
    categories: dict[str, CategoryUpdate] = Field(default_factory=dict)
    max_concurrent_resolutions: Annotated[int, Field(ge=1, le=1000)] | None = None
    kill_switch: KillSwitchBody | None = None


class BodyInvalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _body(request: Request, model: type[Model]) -> Model:
    """The JSON body validated by ``model``; a bad one answers 400 naming the field."""
    try:
        raw = await request.json()
    except ValueError:
        raise BodyInvalid("the body is not valid JSON") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BodyInvalid(describe_validation(exc)) from None


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def kill_switch_json(switch: KillSwitch) -> dict[str, Any]:
    return {
        "on": switch.on,
        "by": switch.by,
        "reason": switch.reason,
        "at": switch.at.isoformat() if switch.at else None,
        "text": f"kill switch {switch.describe()}",
    }


def _default_limit(runtime: Runtime) -> int:
    return int(getattr(runtime.settings, "max_concurrent_resolutions", DEFAULT_MAX_CONCURRENT))


def _known_playbooks(runtime: Runtime) -> Collection[str]:
    """The loaded playbook ids (to check ``allowed_playbooks`` and playbook ids)."""
    return set(runtime.registry.ids())


def config_json(conn: Connection, default_limit: int) -> dict[str, Any]:
    return {
        "kill_switch": kill_switch_json(read_kill_switch(conn)),
        "max_concurrent_resolutions": read_max_concurrent(conn, default_limit),
        "categories": {name: p.as_json() for name, p in read_categories(conn).items()},
    }


# the audit chain -----------------------------------------------------------------------------


def audit_entry_json(row: Any) -> dict[str, Any]:
    mapping = dict(row._mapping)
    return {
        **audit_json(row),
        "data": json.loads(row.data_json or "{}"),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        # the entry still hashes to what was written (the links are checked by audit verify)
        "intact": audit.entry_hash(row.prev_hash, mapping) == row.hash,
    }


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def audit_page(
    engine: Engine,
    actor: str,
    action: str,
    incident: str,
    result: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: int | None,
    offset: int,
) -> dict[str, Any]:
    query = select(AUDIT)
    if actor:
        query = query.where(AUDIT.c.actor == actor)
    if action:
        query = query.where(AUDIT.c.action == action)
    if incident:
        query = query.where(AUDIT.c.incident_id == incident_number(incident))
    if result:
        query = query.where(AUDIT.c.result == result)
    since, until = _utc(since), _utc(until)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if until is not None:
        query = query.where(AUDIT.c.at < until)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        if cursor is not None:
            query = query.where(AUDIT.c.id < cursor)
        rows = conn.execute(query.order_by(AUDIT.c.id.desc()).limit(limit).offset(offset)).all()
    items = [audit_entry_json(r) for r in rows]
    more = len(rows) == limit
    return {"items": items, "total": total, "next_cursor": rows[-1].id if more else None}


def incident_chain(engine: Engine, number: int) -> dict[str, Any]:
    with engine.connect() as conn:
        exists = conn.execute(select(INCIDENTS.c.id).where(INCIDENTS.c.id == number)).first()
        rows = conn.execute(
            select(AUDIT).where(AUDIT.c.incident_id == number).order_by(AUDIT.c.id)
        ).all()
    if exists is None and not rows:
        raise NotFound(f"no incident INC-{number}, and no audit entries name it")
    items = [audit_entry_json(r) for r in rows]
    return {
        "incident": f"INC-{number}",
        "items": items,
        "total": len(items),
        "intact": all(i["intact"] for i in items),
    }


# the router ----------------------------------------------------------------------------------


def make_admin_router(runtime: Runtime, caller: Any) -> APIRouter:
    """``caller`` is the FastAPI dependency that authenticates and returns a Caller."""
    api = APIRouter(prefix="/api/v1", tags=["config and audit"])
    authenticated = Depends(caller)
    engine = runtime.engine

    def admin(who: Caller) -> None:
        runtime.roles.require(who.identity, Role.ADMIN)

    def invalid(exc: BodyInvalid) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=400)

    # kill switch -----------------------------------------------------------------------------

    @api.get("/config/kill-switch")
    async def kill_switch(who: Caller = authenticated) -> dict[str, Any]:
        return kill_switch_json(await asyncio.to_thread(read_kill_switch, engine))

    async def toggle(on: bool, request: Request, who: Caller) -> Any:
        admin(who)
        try:
            body = await _body(request, ReasonBody)
        except BodyInvalid as exc:
            return invalid(exc)
        change = await asyncio.to_thread(
            change_kill_switch, engine, on, who.identity, "api", body.reason, runtime.clock.now()
        )
        runtime.metrics.kill_switch.set(1 if change.switch.on else 0)
        return {
            **kill_switch_json(change.switch),
            "changed": change.changed,
            "message": change.message,
        }

    @api.post("/config/kill-switch/activate", openapi_extra=_schema(ReasonBody))
    async def activate(request: Request, who: Caller = authenticated) -> Any:
        return await toggle(True, request, who)

    @api.post("/config/kill-switch/deactivate", openapi_extra=_schema(ReasonBody))
    async def deactivate(request: Request, who: Caller = authenticated) -> Any:
        return await toggle(False, request, who)

    # playbooks turned off (by the circuit breaker or an admin) ---------------------------------

    @api.get("/config/playbooks")
    async def playbooks_state(who: Caller = authenticated) -> dict[str, Any]:
        disabled = await asyncio.to_thread(disabled_playbooks, engine)
        return {"disabled": [{"playbook": k, "reason": v} for k, v in sorted(disabled.items())]}

    async def switch_playbook(playbook_id: str, on: bool, request: Request, who: Caller) -> Any:
        admin(who)
        if playbook_id not in _known_playbooks(runtime):
            raise NotFound(f"no playbook {playbook_id!r}; GET /api/v1/config lists them")
        try:
            body = await _body(request, ReasonBody)
        except BodyInvalid as exc:
            return invalid(exc)
        now = runtime.clock.now()
        if on:
            changed = await asyncio.to_thread(
                enable_playbook, engine, playbook_id, body.reason, now, who.identity, "api"
            )
            message = f"{playbook_id} is on" if changed else f"{playbook_id} was not turned off"
        else:
            await asyncio.to_thread(
                disable_playbook, engine, playbook_id, body.reason, now, who.identity, "api"
            )
            changed, message = True, f"{playbook_id} is off: {body.reason}"
        return {"playbook": playbook_id, "enabled": on, "changed": changed, "message": message}

    @api.post("/config/playbooks/{playbook_id}/enable", openapi_extra=_schema(ReasonBody))
    async def enable(playbook_id: str, request: Request, who: Caller = authenticated) -> Any:
        return await switch_playbook(playbook_id, True, request, who)

    @api.post("/config/playbooks/{playbook_id}/disable", openapi_extra=_schema(ReasonBody))
    async def disable(playbook_id: str, request: Request, who: Caller = authenticated) -> Any:
        return await switch_playbook(playbook_id, False, request, who)

    # configuration ---------------------------------------------------------------------------

    def read_all() -> dict[str, Any]:
        with engine.connect() as conn:
            return config_json(conn, _default_limit(runtime))

    @api.get("/config")
    async def config(who: Caller = authenticated) -> dict[str, Any]:
        return await asyncio.to_thread(read_all)

    @api.put("/config", openapi_extra=_schema(ConfigBody))
    async def put_config(request: Request, who: Caller = authenticated) -> Any:
        admin(who)
        try:
            body = await _body(request, ConfigBody)
        except BodyInvalid as exc:
            return invalid(exc)
        for name in body.categories:
            check_category(name)
        now, actor, known = runtime.clock.now(), who.identity, _known_playbooks(runtime)

        def save() -> None:
            with engine.begin() as conn:
                for name, update in body.categories.items():
                    policy = update.apply(read_category(conn, name))
                    save_category_in(conn, policy, actor, "api", now, known)
                if body.max_concurrent_resolutions is not None:
                    save_max_concurrent_in(
                        conn,
                        body.max_concurrent_resolutions,
                        actor,
                        "api",
                        now,
                        _default_limit(runtime),
                    )

        await asyncio.to_thread(save)
        if body.kill_switch is not None:
            switch = body.kill_switch
            await asyncio.to_thread(
                change_kill_switch, engine, switch.on, actor, "api", switch.reason, now
            )
        return await asyncio.to_thread(read_all)

    @api.get("/config/category/{category}")
    async def category(category: str, who: Caller = authenticated) -> dict[str, Any]:
        check_category(category)
        policy = await asyncio.to_thread(read_category, engine, category)
        return policy.as_json()

    @api.put("/config/category/{category}", openapi_extra=_schema(CategoryUpdate))
    async def put_category(category: str, request: Request, who: Caller = authenticated) -> Any:
        check_category(category)
        admin(who)
        try:
            update = await _body(request, CategoryUpdate)
        except BodyInvalid as exc:
            return invalid(exc)
        now, known = runtime.clock.now(), _known_playbooks(runtime)

        def save() -> dict[str, Any]:
            with engine.begin() as conn:
                policy = update.apply(read_category(conn, category))
                return save_category_in(conn, policy, who.identity, "api", now, known).as_json()

        return await asyncio.to_thread(save)

    # the audit chain -------------------------------------------------------------------------

    @api.get("/audit")
    async def audit_list(
        actor: str = "",
        action: str = "",
        incident: str = "",
        result: str = "",
        since: Timestamp | None = None,
        until: Timestamp | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
        who: Caller = authenticated,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(
            audit_page,
            engine,
            actor,
            action,
            incident,
            result,
            since,
            until,
            limit,
            cursor,
            offset,
        )

    @api.get("/audit/incident/{incident_id}")
    async def audit_incident(incident_id: str, who: Caller = authenticated) -> dict[str, Any]:
        return await asyncio.to_thread(incident_chain, engine, incident_number(incident_id))

    return api
