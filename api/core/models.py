"""Frozen views that services return. Table models never leave the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from api.core import ids
from api.core.frozen import quick_init

JSONObject = dict[str, Any]


class Plan(StrEnum):
    FREE = "free"
    PERSONAL = "personal"
    BUSINESS = "business"


PLAN_RANK = {Plan.FREE: 0, Plan.PERSONAL: 1, Plan.BUSINESS: 2}


class Actor(StrEnum):
    USER = "user"
    MASTER = "master"


@quick_init
@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    plan: Plan
    allowed_origins: tuple[str, ...]
    allow_no_origin: bool

    def origin_allowed(self, origin: str) -> bool:
        # An empty list means "no restriction": the project did not set allowed_origins.
        if not self.allowed_origins or "*" in self.allowed_origins:
            return True
        return origin in self.allowed_origins

    def lists_origin(self, origin: str) -> bool:
        """Whether this project itself lists the origin (exactly, or by its own `*`): only
        then may a browser script from it read this project's answers (CORS, WebSocket)."""
        return origin in self.allowed_origins or "*" in self.allowed_origins


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    project_id: str
    name: str


@quick_init
@dataclass(frozen=True, slots=True)
class User:
    pk: int
    unique_id: str
    endpoint_id: int
    endpoint: str
    username: str
    email: str | None
    first_name: str | None
    last_name: str | None
    phone_number: str | None
    image_url: str | None
    two_factor_enabled: bool
    email_verified: bool
    phone_verified: bool
    data: JSONObject
    version: int
    created_at: int
    updated_at: int
    password_hash: str = field(repr=False, default="")

    @property
    def public_id(self) -> str:
        return ids.user_id(self.unique_id)

    def document(self) -> JSONObject:
        """The record's public document: username and custom fields, never the password."""
        return {"username": self.username, **self.data}


@quick_init
@dataclass(frozen=True, slots=True)
class Session:
    id: str  # hex part
    user_pk: int
    unique_id: str
    created_at: int
    expires_at: int
    last_seen_at: int
    revoked_at: int | None
    user_agent: str | None
    ip: str | None

    @property
    def public_id(self) -> str:
        return ids.session_id(self.id)


@quick_init
@dataclass(frozen=True, slots=True)
class SignInAttempt:
    id: int
    kind: str  # "signin", "signup" or "reauth"
    identifier: str
    succeeded: bool
    reason: str | None
    ip: str | None
    created_at: int


@quick_init
@dataclass(frozen=True, slots=True)
class SessionInfo:
    signin_attempts: tuple[SignInAttempt, ...]
    signins: tuple[Session, ...]
    signup_attempts: tuple[SignInAttempt, ...]
    active_signin: Session | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    action: str
    fields: tuple[str, ...]
    strategy: str | None
    actor: Actor
    ip: str | None
    at: int


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated user and the session its token belongs to."""

    user: User
    session: Session
