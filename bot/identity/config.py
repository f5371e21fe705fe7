"""Cross-checks of the sign-in settings that one field's validator cannot make."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.settings import Settings

#: arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>
ALB_ARN = re.compile(
    r"arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):\d{12}:loadbalancer/app/\S+"
)


def alb_region(arn: str) -> str:
    match = ALB_ARN.fullmatch(arn)
    if match is None:
        raise ConfigError(
            f"BOT_ALB_ARN: {arn!r} is not a load balancer ARN "
            "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID)"
        )
    return match["region"]


def alb_key_base(settings: Settings) -> str:
    """Where the ALB's public keys are published: ``<base>/<kid>`` is one PEM key."""
    if settings.alb_key_url:
        return settings.alb_key_url.rstrip("/")
    return f"https://public-keys.auth.elb.{alb_region(settings.alb_arn)}.amazonaws.com"


def check_auth_settings(settings: Settings) -> None:
    """Raise ConfigError naming every missing or inconsistent sign-in setting."""
    problems: list[str] = []
    if settings.auth_mode == "alb":
        if not settings.alb_arn:
            problems.append(
                "BOT_ALB_ARN: required when BOT_AUTH_MODE=alb (the load balancer whose "
                "signature the x-amzn-oidc-data header must carry)"
            )
        else:
            try:
                alb_region(settings.alb_arn)
            except ConfigError as exc:
                problems.append(str(exc))
        if settings.alb_key_url and not settings.alb_key_url.startswith(("https://", "http://")):
            problems.append(f"BOT_ALB_KEY_URL: {settings.alb_key_url!r} is not an http(s) URL")
    if settings.auth_mode == "oidc":
        needed = {
            "BOT_OIDC_ISSUER": settings.oidc_issuer,
            "BOT_OIDC_CLIENT_ID": settings.oidc_client_id,
            "BOT_OIDC_CLIENT_SECRET": settings.oidc_client_secret,
            "BOT_SESSION_SECRET": settings.session_secret,
        }
        for name, value in needed.items():
            if not value:
                problems.append(f"{name}: required when BOT_AUTH_MODE=oidc")
        if settings.oidc_issuer and not settings.oidc_issuer.startswith(("https://", "http://")):
            problems.append(f"BOT_OIDC_ISSUER: {settings.oidc_issuer!r} is not an http(s) URL")
        if "openid" not in settings.oidc_scopes.split():
            problems.append("BOT_OIDC_SCOPES: must include 'openid' to receive an ID token")
    secret = settings.session_secret
    if secret is not None and len(secret.get_secret_value()) < 32:
        problems.append(
            "BOT_SESSION_SECRET: use at least 32 characters (python -c 'import "
            "secrets; print(secrets.token_urlsafe(32))')"
        )
    if problems:
        raise ConfigError("\n".join(problems))
