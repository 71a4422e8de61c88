"""Table definitions. Timestamps are integer milliseconds since the epoch (UTC)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


class ProjectRow(SQLModel, table=True):
    __tablename__ = "projects"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100, unique=True)
    plan: str = Field(max_length=16, default="personal")
    allow_no_origin: bool = True
    api_key_digest: str = Field(max_length=64, unique=True)
    master_key_digest: str = Field(max_length=64, unique=True)
    created_at: int = Field(sa_type=BigInteger)


class ProjectOriginRow(SQLModel, table=True):
    """One row per allowed origin (`*` for any): preflights look an origin up by index."""

    __tablename__ = "project_origins"

    project_id: str = Field(
        foreign_key="projects.id", primary_key=True, max_length=40, ondelete="CASCADE"
    )
    origin: str = Field(primary_key=True, max_length=300, index=True)


class EndpointRow(SQLModel, table=True):
    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_endpoints_project_name"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: str = Field(foreign_key="projects.id", max_length=40, ondelete="CASCADE")
    name: str = Field(max_length=63)
    created_at: int = Field(sa_type=BigInteger)


class UserRow(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        # Case-insensitive uniqueness per endpoint: the canonical columns hold the folded
        # forms, so the same rule holds on SQLite and PostgreSQL without collations.
        UniqueConstraint("endpoint_id", "username_canonical", name="uq_users_username"),
        UniqueConstraint("endpoint_id", "email_canonical", name="uq_users_email"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    unique_id: str = Field(max_length=32, unique=True)
    username: str = Field(max_length=150)
    username_canonical: str = Field(max_length=150)
    email: str | None = Field(default=None, max_length=254)
    email_canonical: str | None = Field(default=None, max_length=254)
    password_hash: str = Field(max_length=255)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone_number: str | None = Field(default=None, max_length=16)
    image_url: str | None = Field(default=None, max_length=2048)
    two_factor_enabled: bool = False
    email_verified: bool = False
    phone_verified: bool = False
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)


class SessionRow(SQLModel, table=True):
    __tablename__ = "sessions"

    id: str = Field(primary_key=True, max_length=32)
    user_pk: int = Field(foreign_key="users.pk", index=True, ondelete="CASCADE")
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    last_seen_at: int = Field(sa_type=BigInteger)
    revoked_at: int | None = Field(default=None, sa_type=BigInteger)
    user_agent: str | None = Field(default=None, max_length=512)
    ip: str | None = Field(default=None, max_length=64)


class SignInAttemptRow(SQLModel, table=True):
    __tablename__ = "signin_attempts"
    __table_args__ = (
        Index("ix_attempts_identifier", "endpoint_id", "identifier", "created_at"),
        Index("ix_attempts_ip", "ip", "created_at"),
        Index("ix_attempts_user", "user_pk", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    user_pk: int | None = Field(default=None, foreign_key="users.pk", ondelete="CASCADE")
    kind: str = Field(max_length=16)
    identifier: str = Field(max_length=254)
    ip: str | None = Field(default=None, max_length=64)
    succeeded: bool
    reason: str | None = Field(default=None, max_length=64)
    created_at: int = Field(sa_type=BigInteger)


class AuditEventRow(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_user", "user_pk", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: str = Field(foreign_key="projects.id", max_length=40, ondelete="CASCADE")
    user_pk: int = Field(foreign_key="users.pk", ondelete="CASCADE")
    action: str = Field(max_length=32)
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    strategy: str | None = Field(default=None, max_length=16)
    actor: str = Field(max_length=16)
    ip: str | None = Field(default=None, max_length=64)
    at: int = Field(sa_type=BigInteger)


class OutboxRow(SQLModel, table=True):
    """Security notices, written in the transaction of the change they report and delivered
    after commit. `claimed_until` lets one instance deliver a row while others skip it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_pk: int | None = Field(default=None, foreign_key="users.pk", ondelete="SET NULL")
    to: str = Field(max_length=254)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=200)
    body: str = Field(max_length=4000)
    created_at: int = Field(sa_type=BigInteger)
    delivered_at: int | None = Field(default=None, sa_type=BigInteger)
    attempts: int = 0
    next_attempt_at: int = Field(sa_type=BigInteger)
    claimed_until: int | None = Field(default=None, sa_type=BigInteger)
    last_error: str | None = Field(default=None, max_length=500)
    # The body holds a token or code: stored encrypted until delivered, then redacted.
    sealed: bool = False
    failed_at: int | None = Field(default=None, sa_type=BigInteger)  # a permanent refusal


class EmailChangeRow(SQLModel, table=True):
    """A pending, verified email change: at most one per user (a new one replaces it)."""

    __tablename__ = "email_changes"

    user_pk: int = Field(foreign_key="users.pk", primary_key=True, ondelete="CASCADE")
    new_email: str = Field(max_length=254)
    code_digest: str = Field(max_length=64)
    tries: int = 0
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)


class RecoveryTokenRow(SQLModel, table=True):
    """Tokens of account recovery, kept only as keyed digests. A password-reset request
    writes a row even for an unknown identifier (`user_pk` NULL): the same work either way,
    and the row counts towards the request throttle."""

    __tablename__ = "recovery_tokens"
    __table_args__ = (
        Index("ix_recovery_identifier", "endpoint_id", "purpose", "identifier", "created_at"),
        Index("ix_recovery_ip", "purpose", "ip", "created_at"),
        Index("ix_recovery_user", "user_pk", "purpose"),
    )

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    purpose: str = Field(max_length=16)  # password_reset, email_revert, email_verify
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    user_pk: int | None = Field(default=None, foreign_key="users.pk", ondelete="CASCADE")
    identifier: str = Field(max_length=254)
    email: str | None = Field(default=None, max_length=254)  # the address the token is for
    ip: str | None = Field(default=None, max_length=64)
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    used_at: int | None = Field(default=None, sa_type=BigInteger)


def _t(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


metadata = SQLModel.metadata
projects = _t(ProjectRow)
project_origins = _t(ProjectOriginRow)
endpoints = _t(EndpointRow)
users = _t(UserRow)
sessions = _t(SessionRow)
signin_attempts = _t(SignInAttemptRow)
audit_events = _t(AuditEventRow)
outbox = _t(OutboxRow)
email_changes = _t(EmailChangeRow)
recovery_tokens = _t(RecoveryTokenRow)
