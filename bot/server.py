"""The one HTTP app: health, readiness, metrics, REST API, console (and later chat webhooks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api import make_router
from bot.api_admin import make_admin_router
from bot.api_charts import make_charts_router
from bot.api_maintenance import make_maintenance_router
from bot.api_reports import make_reports_router
from bot.api_runs import make_runs_router
from bot.auth import Authenticator, Caller, Unauthenticated
from bot.console.routes import make_console, static_files
from bot.domain.incident import State
from bot.errors import (
    BotError,
    ConfigError,
    Conflict,
    NotFound,
    PermanentError,
    PolicyViolation,
    TransientError,
)
from bot.identity.routes import mount_identity
from bot.openapi import declare_errors
from bot.store.repo import INCIDENTS
from bot.store.runtime_config import read_kill_switch
from bot.wiring import Runtime

log = logging.getLogger(__name__)

STATUS: list[tuple[type[BotError], int]] = [
    (Unauthenticated, 401),
    (NotFound, 404),
    (PolicyViolation, 403),
    (Conflict, 409),
    (ConfigError, 400),
    (PermanentError, 400),
    (TransientError, 503),
]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a size."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") or declared is not None:
            await self.app(scope, receive, send)  # a declared size was checked above
            return
        # a body without a declared size (chunked): read it up to the limit, then replay it
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = (
            f'{{"error": "request body is larger than {self.limit} bytes (BOT_MAX_BODY_BYTES)"}}'
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Incident ChatOps bot",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)

    @app.middleware("http")
    async def database_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        needs_db = (
            path.startswith("/api/")
            or path in ("/", "/rules", "/audit", "/events")
            or (path.startswith("/incidents"))
        )
        if needs_db and not runtime.db.ready:
            return JSONResponse(
                {"error": f"database unavailable: {runtime.db.reason}"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return await call_next(request)

    @app.exception_handler(BotError)
    async def bot_error(request: Request, exc: BotError) -> JSONResponse:
        for kind, code in STATUS:
            if isinstance(exc, kind):
                return JSONResponse({"error": str(exc)}, status_code=code)
        return JSONResponse({"error": str(exc)}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                where = error["loc"][-1] if error["loc"] else "?"
                reason = error.get("ctx", {}).get("error", "invalid JSON")
                problems.append(f"the body is not valid JSON ({reason} at character {where})")
                continue
            where = ".".join(str(p) for p in error["loc"] if p != "body")
            problems.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
        return JSONResponse({"error": "; ".join(problems) or "malformed request"}, status_code=400)

    auth = Authenticator(runtime.settings, runtime.engine, runtime.clock)

    def caller(request: Request) -> Caller:
        who = auth.caller(request)
        if who.via_cookie and request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            # behind a load balancer the public address is BOT_PUBLIC_URL, not the task's
            ours = {str(request.base_url).rstrip("/"), runtime.settings.console_url}
            if origin and origin.rstrip("/") not in ours:
                raise PolicyViolation("cross-site request refused")
        return who

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        report = await runtime.readiness()
        code = 503 if report["checks"]["database"]["status"] != "ok" else 200
        return JSONResponse(report, status_code=code)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> PlainTextResponse:
        if runtime.db.ready:
            await asyncio.to_thread(_refresh_gauges, runtime)
        runtime.metrics.rca_queue.set(runtime.enricher.depth)
        return PlainTextResponse(
            generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    app.include_router(make_router(runtime, caller))
    app.include_router(make_runs_router(runtime, caller))
    app.include_router(make_admin_router(runtime, caller))
    app.include_router(make_maintenance_router(runtime, caller))
    app.include_router(make_reports_router(runtime, caller))
    app.include_router(make_charts_router(runtime.charts))  # signed links: no caller needed
    for router in runtime.webhook_routers():
        app.include_router(router)
    app.include_router(make_console(runtime, caller))
    mount_identity(app, auth)
    app.mount("/static", static_files(), name="static")
    declare_errors(app)
    return app


def _refresh_gauges(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        counts: dict[str, Any] = dict(
            conn.execute(select(INCIDENTS.c.state, func.count()).group_by(INCIDENTS.c.state)).all()
        )
    for state in State:
        runtime.metrics.incidents.labels(state.value).set(counts.get(state.value, 0))
    counters = getattr(runtime.backend, "counters", None)
    if counters is not None:
        for figure in ("started", "active", "max_active", "retries", "relogins", "capped"):
            runtime.metrics.search.labels(figure).set(getattr(counters, figure, 0))
        for kind, count in getattr(counters, "errors", {}).items():
            runtime.metrics.search_errors.labels(kind).set(count)
    runtime.metrics.kill_switch.set(1 if read_kill_switch(runtime.engine).on else 0)
    stats = runtime.outbox.stats()
    runtime.metrics.lease_held.set(1 if runtime.lease.held else 0)
    seen = runtime.lease.last_seen
    runtime.metrics.lease_generation.set(seen.generation if seen else 0)
    runtime.metrics.outbox_depth.set(stats.pending)
    runtime.metrics.outbox_age.set(stats.oldest_age_s)
    runtime.metrics.outbox_dead.set(stats.dead)
