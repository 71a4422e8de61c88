"""Proof that the user is present: a recent sign-in, or the password checked like a sign-in."""

from __future__ import annotations

from api.core.models import User
from api.core.policy import canonical_username
from api.services.context import RequestContext
from api.services.ratelimit import reserve_attempt
from api.store import attempts, users


def signed_in_recently(ctx: RequestContext, signed_in_at: int, now: int) -> bool:
    return signed_in_at >= now - ctx.services.settings.reauth_window_seconds * 1000


async def check_password(
    ctx: RequestContext, user: User, password: str, *, password_hash: str | None = None
) -> str | None:
    """The stored hash when `password` is the user's (upgraded to argon2id when it was of an
    imported format or outdated parameters), None when it is not; counted as a sign-in
    attempt of that account.

    Every comparison of a caller's guess with the stored hash goes through here (a
    `currentPassword`, a document's password from a caller without proof of presence): the
    throttle is checked and the attempt recorded before the hash is computed, so a stolen
    token cannot try passwords faster than the sign-in form allows, nor while the account is
    locked.
    """
    services = ctx.services
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
    stored = user.password_hash if password_hash is None else password_hash
    checked = await services.hasher.verify(password, stored)
    async with services.db.write() as tx:
        await attempts.finish(
            tx, attempt, succeeded=checked.ok, reason=None if checked.ok else "wrong_password"
        )
        if checked.ok and checked.new_hash is not None:
            await users.set_password_hash(tx, user.pk, checked.new_hash, stored)
            stored = checked.new_hash
    return stored if checked.ok else None
