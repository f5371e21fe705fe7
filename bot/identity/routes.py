"""Sign-in pages: ``/login`` and ``/logout`` in every mode, ``/auth/login`` and
``/auth/callback`` for a direct OIDC provider."""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.sessions import SessionMiddleware

from bot.auth import CLAIMED, Authenticator, valid_name
from bot.identity.oidc import STATE_COOKIE, OidcClient, SignInFailed
from bot.identity.session import COOKIE
from bot.store import audit, tokens

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "console" / "templates"
ALB_SIGN_IN = (
    "This console signs you in through the load balancer. Open it at its public address; "
    "requests that bypass the load balancer are refused."
)


def safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


def mount_identity(app: FastAPI, auth: Authenticator) -> None:
    """Add the sign-in routes (and, for OIDC, the signed state cookie they need)."""
    settings = auth.settings
    secure = settings.console_url.startswith("https://")
    templates = Jinja2Templates(directory=str(TEMPLATES))
    router = APIRouter(include_in_schema=False)
    oidc = OidcClient(settings) if auth.mode == "oidc" else None

    def signed_in(name: str, target: str) -> Response:
        response = RedirectResponse(safe_next(target), status_code=303)
        assert auth.sessions is not None
        response.set_cookie(
            COOKIE,
            auth.issue_session(name),
            httponly=True,
            # lax: the OIDC callback arrives by a cross-site redirect and must keep the cookie
            samesite="lax" if oidc is not None else "strict",
            secure=secure,
            max_age=auth.sessions.max_age,
        )
        return response

    def failed(target: str, text: str) -> Response:
        query = f"error={text.replace(' ', '+')}&next={safe_next(target)}"
        return RedirectResponse(f"/login?{query}", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/", error: str = "") -> Response:
        if oidc is not None and not error:
            return RedirectResponse(f"/auth/login?next={safe_next(next)}", status_code=303)
        if auth.mode == "alb":
            error = error or ALB_SIGN_IN
        context = {"next": safe_next(next), "error": error, "user": None, "mode": auth.mode}
        return templates.TemplateResponse(request, "login.html", context)

    @router.post("/login")
    async def login(
        request: Request, name: str = Form(""), token: str = Form(...), next: str = Form("/")
    ) -> Response:
        """A personal API token signs its own identity in; the shared console token (token
        mode only) signs in whatever name is given."""
        if auth.mode == "token" and settings.console_token is None:
            return RedirectResponse(safe_next(next), status_code=303)
        if auth.mode == "alb":  # the load balancer's header is the only console sign-in
            return failed(next, "Sign in through the load balancer")
        if tokens.looks_like_token(token.strip()):
            try:
                found = await asyncio.to_thread(auth.personal_token, token.strip())
            except SQLAlchemyError:
                return failed(next, "The database is unavailable; try again")
            if found is None or auth.sessions is None:
                auth.record(request, "login", "console login with an unknown or revoked token")
                return failed(next, "Unknown or revoked token")
            return signed_in(found.name, next)
        shared = settings.console_token
        if (
            auth.mode != "token"
            or shared is None
            or not valid_name(name)
            or not hmac.compare_digest(token.encode(), shared.get_secret_value().encode())
        ):
            auth.record(request, "login", "console login with a wrong name or token")
            return failed(next, "Wrong name or token")
        return signed_in(name, next)

    @router.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/login?error=Signed+out" if oidc else "/login", 303)
        response.delete_cookie(COOKIE)
        return response

    if oidc is not None:
        client = oidc

        @router.get("/auth/login")
        async def oidc_login(request: Request, next: str = "/") -> Response:
            request.session["next"] = safe_next(next)
            try:
                response: Response = await client.redirect(request)
            except Exception as exc:  # the provider's discovery document is unreachable
                log.warning("OIDC sign-in could not reach the provider: %s", exc)
                return JSONResponse(
                    {"error": f"the identity provider did not answer: {exc}"}, status_code=503
                )
            return response

        @router.get("/auth/callback")
        async def oidc_callback(request: Request) -> Response:
            target = safe_next(str(request.session.pop("next", "/")))
            try:
                who = await client.complete(request)
            except SignInFailed as exc:
                auth.record(request, "oidc", str(exc))
                return JSONResponse({"error": f"sign-in failed: {exc}"}, status_code=401)
            except Exception as exc:  # the token endpoint or the JWKS is unreachable
                log.warning("OIDC sign-in could not complete: %s", exc)
                return JSONResponse(
                    {"error": f"the identity provider did not answer: {exc}"}, status_code=503
                )
            if not CLAIMED.fullmatch(who.name):
                return JSONResponse(
                    {"error": f"sign-in failed: {who.name!r} is not a usable name"},
                    status_code=401,
                )
            await asyncio.to_thread(_audit_sign_in, auth, who.name, who.issuer)
            return signed_in(who.name, target)

    app.include_router(router)
    if oidc is not None:
        assert settings.session_secret is not None
        app.add_middleware(
            SessionMiddleware,
            secret_key=settings.session_secret.get_secret_value(),
            session_cookie=STATE_COOKIE,
            max_age=600,
            same_site="lax",
            https_only=secure,
        )


def _audit_sign_in(auth: Authenticator, name: str, issuer: str) -> None:
    with auth.engine.begin() as conn:
        audit.append(
            conn,
            [
                {
                    "at": auth.clock.now(),
                    "actor": f"console:{name}",
                    "surface": "console",
                    "action": "signed_in",
                    "result": "ok",
                    "detail": f"OIDC sign-in from {issuer}",
                    "data": {"mode": "oidc", "issuer": issuer},
                }
            ],
        )
