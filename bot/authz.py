"""Who may do what: identities (``slack:U123``, ``console:alice``…) mapped to roles.

The roles file (``BOT_ROLES_FILE``)::

    default_role: viewer
    roles:
      admin: [console:alice, cli:root]
      responder: [slack:U0123ABC, slack-group:S0456DEF, teams:9f0c…, pagerduty:*]
      viewer: []

Without a roles file (the embedded default) console and CLI users are admins, PagerDuty users
(whose changes arrive signed by PagerDuty) are responders, and everyone else is a viewer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.errors import ConfigError, PolicyViolation


class Role(StrEnum):
    VIEWER = "viewer"
    RESPONDER = "responder"
    ADMIN = "admin"

    @property
    def level(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.level >= needed.level


IDENTITY_KINDS = ("console", "slack", "slack-group", "teams", "pagerduty", "cli")


class _RolesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_role: Role = Role.VIEWER
    roles: dict[Role, list[str]] = {}


@dataclass(frozen=True, slots=True)
class Roles:
    default_role: Role = Role.VIEWER
    members: dict[str, Role] = field(default_factory=dict)
    embedded: bool = False

    @classmethod
    def embedded_default(cls) -> Roles:
        return cls(embedded=True)

    @classmethod
    def load(cls, path: Path) -> Roles:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the roles file: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            raise ConfigError(f"{path}:{line}: not valid YAML") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: must hold a mapping with default_role and roles")
        try:
            parsed = _RolesFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: {where}: {first['msg']}") from None
        members: dict[str, Role] = {}
        for role, identities in parsed.roles.items():
            for identity in identities:
                kind = identity.split(":", 1)[0]
                if ":" not in identity or kind not in IDENTITY_KINDS:
                    raise ConfigError(
                        f"{path}: roles.{role.value}: bad identity {identity!r}; "
                        f"use one of {', '.join(k + ':<id>' for k in IDENTITY_KINDS)}"
                    )
                if role.level > members.get(identity, Role.VIEWER).level or identity not in members:
                    members[identity] = role
        return cls(parsed.default_role, members)

    def role_of(self, identity: str, groups: Iterable[str] = ()) -> Role:
        if self.embedded:
            kind = identity.split(":", 1)[0]
            if kind in ("console", "cli"):
                return Role.ADMIN
            # PagerDuty changes arrive signed by PagerDuty for its own responders
            return Role.RESPONDER if kind == "pagerduty" else Role.VIEWER
        kind = identity.split(":", 1)[0]
        best = self.members.get(identity) or self.members.get(f"{kind}:*") or self.default_role
        for group in groups:
            role = self.members.get(group)
            if role is not None and role.level > best.level:
                best = role
        return best

    def require(self, identity: str, needed: Role, groups: Iterable[str] = ()) -> Role:
        role = self.role_of(identity, groups)
        if not role.allows(needed):
            raise PolicyViolation(f"you need the {needed.value} role (you are {role.value})")
        return role
