"""Output types, built from the services' frozen views."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.utils.str_converters import to_camel_case

from api.core import ids, models
from api.core.errors import AmendError, Field, Problem
from api.core.strategy import Strategy
from api.graphql.scalars import JSON, DateTime
from api.services import accounts
from api.services.context import RequestContext


@strawberry.enum
class UpdateStrategy(Enum):
    FORCE = "force"
    MERGE = "merge"
    REPLACE = "replace"

    def to_core(self) -> Strategy:
        return Strategy(self.value)


@strawberry.type
class UserError:
    code: str
    message: str
    field: list[str] | None

    @classmethod
    def from_problem(cls, problem: Problem) -> UserError:
        field = wire_path(problem.field) if problem.field is not None else None
        return cls(code=problem.reason.value, message=problem.message, field=field)


def wire_path(field: Field) -> list[str]:
    """A service's field path in GraphQL's names. Its first segment is a domain name
    (`current_password`), spelled here as the schema spells the input (`currentPassword`);
    later segments are keys of custom data, kept as the client sent them."""
    if not field:
        return []
    head, *rest = field
    return [to_camel_case(head), *rest]


@strawberry.type
class User:
    id: strawberry.ID
    unique_id: str
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
    data: JSON
    version: int
    created_at: DateTime
    updated_at: DateTime

    @classmethod
    def from_view(cls, u: models.User) -> User:
        # The fields set at once, as the dataclass `__init__` would store them one keyword
        # argument at a time (a third of the cost; every `me` and `updateMe` builds one).
        built = _new(cls)
        built.__dict__ = {
            "id": u.public_id,
            "unique_id": u.unique_id,
            "endpoint": u.endpoint,
            "username": u.username,
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "phone_number": u.phone_number,
            "image_url": u.image_url,
            "two_factor_enabled": u.two_factor_enabled,
            "email_verified": u.email_verified,
            "phone_verified": u.phone_verified,
            "data": u.data,
            "version": u.version,
            "created_at": u.created_at,
            "updated_at": u.updated_at,
        }
        return built


_new = object.__new__


@strawberry.type
class Record:
    unique_id: str
    data: JSON
    version: int
    created_at: DateTime
    updated_at: DateTime

    @classmethod
    def from_view(cls, u: models.User) -> Record:
        return cls(
            unique_id=u.unique_id,
            data=JSON(u.document()),
            version=u.version,
            created_at=DateTime(u.created_at),
            updated_at=DateTime(u.updated_at),
        )


@strawberry.type
class Session:
    id: strawberry.ID
    user_id: strawberry.ID
    created_at: DateTime
    expires_at: DateTime
    current: bool

    @classmethod
    def from_view(cls, s: models.Session, *, current_id: str | None) -> Session:
        return cls(
            id=strawberry.ID(s.public_id),
            user_id=strawberry.ID(ids.user_id(s.unique_id)),
            created_at=DateTime(s.created_at),
            expires_at=DateTime(s.expires_at),
            current=s.id == current_id,
        )


@strawberry.type
class SignInAttempt:
    id: strawberry.ID
    identifier: str
    succeeded: bool
    reason: str | None
    created_at: DateTime

    @classmethod
    def from_view(cls, a: models.SignInAttempt) -> SignInAttempt:
        return cls(
            id=strawberry.ID(str(a.id)),
            identifier=a.identifier,
            succeeded=a.succeeded,
            reason=a.reason,
            created_at=DateTime(a.created_at),
        )


@strawberry.type
class SessionInfo:
    signin_attempts: list[SignInAttempt]
    signins: list[Session]
    signup_attempts: list[SignInAttempt]
    active_signin: Session | None

    @classmethod
    def from_view(cls, info: models.SessionInfo) -> SessionInfo:
        current = info.active_signin.id if info.active_signin else None
        return cls(
            signin_attempts=[SignInAttempt.from_view(a) for a in info.signin_attempts],
            signins=[Session.from_view(s, current_id=current) for s in info.signins],
            signup_attempts=[SignInAttempt.from_view(a) for a in info.signup_attempts],
            active_signin=(
                Session.from_view(info.active_signin, current_id=current)
                if info.active_signin
                else None
            ),
        )


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    action: str
    fields: list[str]
    strategy: UpdateStrategy | None
    actor: str = strawberry.field(description='"user" or "master"')
    ip: str | None
    at: DateTime

    @classmethod
    def from_view(cls, e: models.AuditEvent) -> AuditEvent:
        return cls(
            id=strawberry.ID(str(e.id)),
            action=e.action,
            fields=list(e.fields),
            strategy=UpdateStrategy(e.strategy) if e.strategy else None,
            actor=e.actor.value,
            ip=e.ip,
            at=DateTime(e.at),
        )


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo


@strawberry.type
class AuthPayload:
    token: str | None = None
    user: User | None = None
    session: Session | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UpdateUserPayload:
    record: Record | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UpdateCredentialsPayload:
    user: User | None = None
    reauthentication_required: bool = False
    pending_email: str | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _update_me_session(root: UpdateMePayload) -> SessionInfo | None:
    """Read only when the query selects it (it costs three queries)."""
    if root.auth is None or root.user is None:
        return None
    try:
        return SessionInfo.from_view(await accounts.session_info(root.auth))
    except AmendError:
        return None


@strawberry.type
class UpdateMePayload:
    user: User | None = None
    session: SessionInfo | None = strawberry.field(resolver=_update_me_session)
    errors: list[UserError] = strawberry.field(default_factory=list)
    auth: strawberry.Private[RequestContext | None] = None
