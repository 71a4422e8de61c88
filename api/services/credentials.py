"""Credential changes (email, password): proof of presence, policy, revocation."""

from __future__ import annotations

from dataclasses import dataclass

from api.core.clock import now_ms
from api.core.errors import AmendError, Problem, Reason
from api.core.models import PLAN_RANK, Actor, Plan, User
from api.core.policy import (
    canonical_email,
    canonical_username,
    normalize_email,
    validate_password,
)
from api.services.context import RequestContext
from api.services.ratelimit import check_credential_changes, reserve_attempt
from api.store import attempts, audit, sessions, users


@dataclass(frozen=True, slots=True)
class CredentialsChange:
    user: User
    reauthentication_required: bool
    pending_email: str | None = None


def require_recent_signin(
    ctx: RequestContext, signed_in_at: int, now: int, *, field: tuple[str, ...]
) -> None:
    window = ctx.services.settings.reauth_window_seconds * 1000
    if signed_in_at < now - window:
        raise AmendError(
            Reason.REAUTHENTICATION_REQUIRED,
            "confirm your current password or sign in again to change credentials",
            field=field,
        )


async def update_credentials(
    ctx: RequestContext,
    *,
    email: str | None,
    password: str | None,
    current_password: str | None,
) -> CredentialsChange:
    caller = await ctx.caller()
    if PLAN_RANK[caller.project.plan] < PLAN_RANK[Plan.PERSONAL]:
        raise AmendError(Reason.PLAN_REQUIRED, "this API needs the personal plan or above")
    user = caller.user
    services = ctx.services
    problems: list[Problem] = []
    new_email: str | None = None
    if email is not None:
        try:
            normalized = normalize_email(email, field=("email",))
        except AmendError as error:
            problems.extend(error.problems)
        else:
            if user.email is None or canonical_email(normalized) != canonical_email(user.email):
                new_email = normalized
    if password is not None:
        try:
            validate_password(
                password, username=user.username, email=new_email or user.email, field=("password",)
            )
        except AmendError as error:
            problems.extend(error.problems)
    if problems:
        raise AmendError.of(problems)
    if new_email is None and password is None:
        raise AmendError(Reason.EMPTY_UPDATE, "give a new email address or a new password")

    now = now_ms()
    async with services.db.read() as tx:
        await check_credential_changes(tx, services.settings, user_pk=user.pk, now=now)
    if current_password is not None:
        async with services.db.write() as tx:
            attempt = await reserve_attempt(
                tx,
                services.settings,
                endpoint_id=user.endpoint_id,
                user_pk=user.pk,
                kind="reauth",
                identifier=canonical_username(user.username),
                ip=ctx.ip,
            )
        ok = (await services.hasher.verify(current_password, user.password_hash)).ok
        async with services.db.write() as tx:
            await attempts.finish(
                tx, attempt, succeeded=ok, reason=None if ok else "wrong_current_password"
            )
        if not ok:
            raise AmendError(
                Reason.REAUTHENTICATION_REQUIRED,
                "the current password is not correct",
                field=("currentPassword",),
            )
    else:
        require_recent_signin(ctx, caller.session.created_at, now, field=("currentPassword",))

    new_hash = None
    if password is not None:
        if (await services.hasher.verify(password, user.password_hash)).ok:
            raise AmendError(
                Reason.PASSWORD_POLICY,
                "the new password must differ from the current one",
                field=("password",),
            )
        new_hash = await services.hasher.hash(password)

    changes: dict[str, object] = {}
    if new_email is not None:
        changes.update(email=new_email, email_canonical=canonical_email(new_email))
        changes["email_verified"] = False
    if new_hash is not None:
        changes["password_hash"] = new_hash
    now = now_ms()
    async with services.db.write() as tx:
        current = await users.by_pk(tx, user.pk, for_update=True)
        # Checked against the hash verified above: a credential change that happened in
        # between revoked this session, so this one must not go through.
        if (
            current is None
            or current.password_hash != user.password_hash
            or ((current.email or "") != (user.email or ""))
        ):
            raise AmendError(
                Reason.REAUTHENTICATION_REQUIRED,
                "the credentials changed meanwhile; sign in again",
                field=("currentPassword",),
            )
        updated = await users.update_versioned(tx, current, changes)
        if updated is None:  # pragma: no cover - the row is locked or the writer serialised
            raise AmendError(Reason.VERSION_CONFLICT, "the account changed meanwhile; try again")
        await sessions.revoke_all(tx, user_pk=user.pk, now=now)
        fields = [
            name for name in ("email", "password") if name in changes or f"{name}_hash" in changes
        ]
        await audit.record(
            tx,
            project_id=caller.project.id,
            user_pk=user.pk,
            action="update_credentials",
            fields=fields,
            strategy=None,
            actor=Actor.USER,
            ip=ctx.ip,
            now=now,
        )
    ctx.forget_caller()
    return CredentialsChange(user=updated, reauthentication_required=True)
