"""The audit log a user (or the master key) can read: newest first, cursor-paginated."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from api.core.errors import AmendError, Reason
from api.core.models import AuditEvent
from api.services.context import RequestContext
from api.store import audit, users

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[tuple[str, AuditEvent]]  # (cursor, event)
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.events[-1][0] if self.events else None


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "audit" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AmendError(
            Reason.INVALID_FIELD, "not a cursor of this list", field=("after",)
        ) from None


async def audit_log(
    ctx: RequestContext, *, first: int = 20, after: str | None = None, unique_id: str | None = None
) -> AuditPage:
    if not 1 <= first <= MAX_PAGE:
        raise AmendError(
            Reason.INVALID_FIELD, f"first must be between 1 and {MAX_PAGE}", field=("first",)
        )
    before_id = decode_cursor(after) if after is not None else None
    project = await ctx.project()
    if ctx.is_master:
        if unique_id is None:
            raise AmendError(
                Reason.MISSING_UNIQUE_ID, "with the master key, name the user", field=("unique_id",)
            )
        async with ctx.services.db.read() as tx:
            user = await users.in_project(tx, project.id, unique_id)
        if user is None:
            raise AmendError(Reason.RECORD_NOT_FOUND, "no such user", field=("unique_id",))
        user_pk = user.pk
    else:
        caller = await ctx.caller()
        if unique_id is not None and unique_id != caller.user.unique_id:
            raise AmendError(Reason.NOT_OWNER, "only the owner may read this audit log")
        user_pk = caller.user.pk
    async with ctx.services.db.read() as tx:
        rows = await audit.for_user(tx, user_pk=user_pk, limit=first + 1, before_id=before_id)
    page = rows[:first]
    return AuditPage([(encode_cursor(e.id), e) for e in page], has_next_page=len(rows) > first)
