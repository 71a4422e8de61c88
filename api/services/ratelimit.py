"""Throttling counted in the database, so every instance sees the same counts."""

from __future__ import annotations

from api.config import Settings
from api.core.clock import now_ms
from api.core.errors import AmendError, Reason
from api.store import Tx, attempts, audit


def _retry_after(oldest: int | None, window_ms: int, now: int) -> int:
    if oldest is None:
        return 1
    return max(1, -(-(oldest + window_ms - now) // 1000))


def _limited(retry_after: int) -> AmendError:
    return AmendError(
        Reason.RATE_LIMITED, "too many attempts; try again later", retry_after=retry_after
    )


async def check_signin(
    tx: Tx,
    settings: Settings,
    *,
    endpoint_id: int,
    identifier: str,
    user_pk: int | None,
    ip: str | None,
    now: int,
) -> None:
    """Refuse a sign-in (or a `currentPassword` check) after too many recent failures for
    this identity or this client address."""
    window = settings.throttle_window_seconds * 1000
    since = now - window
    count, oldest = await attempts.failures_for_identity(
        tx, endpoint_id=endpoint_id, identifier=identifier, user_pk=user_pk, since=since
    )
    if count >= settings.signin_max_failures:
        raise _limited(_retry_after(oldest, window, now))
    if ip is not None:
        count, oldest = await attempts.failures_for_ip(tx, ip=ip, since=since)
        if count >= settings.signin_max_failures_per_ip:
            raise _limited(_retry_after(oldest, window, now))


async def check_signups(tx: Tx, settings: Settings, *, ip: str, now: int) -> None:
    """Refuse a sign-up once this client address created `signups_per_ip` accounts within
    the window: each costs a password hash, and a flood would queue everyone's sign-ins."""
    window = settings.throttle_window_seconds * 1000
    count, oldest = await attempts.signups_for_ip(tx, ip=ip, since=now - window)
    if count >= settings.signups_per_ip:
        raise _limited(_retry_after(oldest, window, now))


async def check_credential_changes(tx: Tx, settings: Settings, *, user_pk: int, now: int) -> None:
    window = settings.throttle_window_seconds * 1000
    count, oldest = await audit.credential_changes_since(tx, user_pk=user_pk, since=now - window)
    if count >= settings.credential_changes_per_window:
        raise _limited(_retry_after(oldest, window, now))


async def reserve_attempt(
    tx: Tx,
    settings: Settings,
    *,
    endpoint_id: int,
    user_pk: int | None,
    kind: str,
    identifier: str,
    ip: str | None,
) -> int:
    """Check the throttle and record the attempt as failed, in one write transaction.

    The attempt counts as a failure until `attempts.finish` marks it succeeded, so a burst of
    parallel guesses cannot all pass the check before any of them is recorded.
    """
    identity = f"signin:{endpoint_id}:" + (f"user:{user_pk}" if user_pk else f"id:{identifier}")
    await attempts.lock(tx, identity, *([f"signin-ip:{ip}"] if ip else []))
    now = now_ms()
    await check_signin(
        tx,
        settings,
        endpoint_id=endpoint_id,
        identifier=identifier,
        user_pk=user_pk,
        ip=ip,
        now=now,
    )
    return await attempts.record(
        tx,
        endpoint_id=endpoint_id,
        user_pk=user_pk,
        kind=kind,
        identifier=identifier,
        ip=ip,
        succeeded=False,
        reason="in_progress",
        now=now,
    )
