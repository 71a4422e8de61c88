"""The record API: read a user's document and update it through the strategy engine."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from api.core.clock import now_ms
from api.core.errors import AmendError, Reason
from api.core.models import Endpoint, User
from api.core.policy import (
    canonical_username,
    validate_custom_data,
    validate_password,
    validate_username,
)
from api.core.strategy import Strategy, apply_strategy, auth_document, check_auth_document
from api.services import change_log, retry
from api.services import credential_change as credential_change_step
from api.services.context import RequestContext
from api.services.credential_change import CredentialChange
from api.services.credentials import require_recent_signin
from api.services.presence import check_password, signed_in_recently
from api.services.ratelimit import check_credential_changes
from api.store import Tx, users


@dataclass(frozen=True, slots=True)
class RecordUpdate:
    record: User
    written: bool
    credentials_changed: bool  # sessions were revoked: the caller must sign in again


@dataclass(frozen=True, slots=True)
class _PreparedPassword:
    """A password from a document, already compared with (and hashed against) a stored hash."""

    password: str
    against_hash: str
    new_hash: str | None  # None: it equals the stored password


async def _authorize(ctx: RequestContext, endpoint_name: str, unique_id: str) -> Endpoint:
    endpoint = await ctx.endpoint(endpoint_name)
    if ctx.is_master:
        return endpoint
    caller = await ctx.caller()
    if caller.user.endpoint_id != endpoint.id or caller.user.unique_id != unique_id:
        # Same answer whether or not the record exists: no probing other users' ids.
        raise AmendError(Reason.NOT_OWNER, "only the owner may access this record")
    return endpoint


async def get_record(ctx: RequestContext, *, endpoint: str, unique_id: str) -> User:
    await ctx.project()
    ep = await _authorize(ctx, endpoint, unique_id)
    async with ctx.services.db.read() as tx:
        user = await users.by_unique_id(tx, ep.id, unique_id)
    if user is None:
        raise AmendError(Reason.RECORD_NOT_FOUND, "no such record", field=("unique_id",))
    return user


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = set(old) | set(new)
    return sorted(k for k in keys if k != "password" and old.get(k, _ABSENT) != new.get(k, _ABSENT))


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class _Request:
    """One update as the caller asked for it."""

    endpoint: Endpoint
    unique_id: str
    data: Any
    strategy: Strategy
    expected_version: int | None
    dry_run: bool


@dataclass(frozen=True, slots=True)
class _PasswordToHash:
    """The document carries a password not yet compared with the stored hash: leave the
    transaction, hash, and try again."""

    password: str
    against_hash: str
    username: str
    email: str | None


async def update_record(
    ctx: RequestContext,
    *,
    endpoint: str,
    unique_id: str,
    data: Any,
    strategy: Strategy = Strategy.FORCE,
    expected_version: int | None = None,
    dry_run: bool = False,
) -> RecordUpdate:
    """Apply `data` to the user's document with `strategy`; atomic, version-checked.

    Password hashing never happens inside a write transaction: when the new document carries
    a password that has not been compared with the stored hash yet, the transaction is left
    without writing, the hash is computed, and the update runs again, reusing it only if the
    stored hash has not changed meanwhile.
    """
    await ctx.project()
    ep = await _authorize(ctx, endpoint, unique_id)
    request = _Request(ep, unique_id, data, strategy, expected_version, dry_run)
    prepared: _PreparedPassword | None = None
    # The owner's first try starts from the user the auth check read (no SELECT); the
    # version check in the UPDATE tells whether that copy is still current.
    known = None if ctx.is_master else (await ctx.caller()).user

    async def one_try() -> RecordUpdate | None:
        nonlocal prepared, known
        try:
            outcome = await _attempt(ctx, request, prepared=prepared, known=known)
        finally:
            known = None
        if isinstance(outcome, _PasswordToHash):
            prepared = await _prepare_password(
                ctx, outcome.password, outcome.against_hash, outcome.username, outcome.email
            )
            return None
        return outcome

    return await retry.versioned(one_try, what="record")


async def _attempt(
    ctx: RequestContext,
    request: _Request,
    *,
    prepared: _PreparedPassword | None,
    known: User | None,
) -> RecordUpdate | _PasswordToHash | None:
    """One try: the update, or the password still to be hashed, or None (lost a race, or
    `known` was stale: read afresh)."""
    opener = ctx.services.db.read if request.dry_run else ctx.services.db.write
    async with opener() as tx:
        user = known or await users.by_unique_id(
            tx, request.endpoint.id, request.unique_id, for_update=not request.dry_run
        )
        if user is None:
            raise AmendError(Reason.RECORD_NOT_FOUND, "no such record", field=("unique_id",))
        expected_version = request.expected_version
        if expected_version is not None and user.version != expected_version:
            if known is not None:
                return None
            raise AmendError(
                Reason.VERSION_CONFLICT,
                f"the record is at version {user.version}, not {expected_version}",
                field=("expected_version",),
            )
        old_doc = auth_document(user.username, user.data)
        doc = check_auth_document(apply_strategy(request.strategy, old_doc, request.data))
        username = validate_username(doc.username, field=("data", "username"))
        custom = validate_custom_data(doc.data, field=("data",))
        new_hash: str | None = None
        if doc.password is not None:
            if prepared is None or (prepared.password, prepared.against_hash) != (
                doc.password,
                user.password_hash,
            ):
                # Leave the transaction before hashing: the caller hashes, then tries again.
                return _PasswordToHash(doc.password, user.password_hash, username, user.email)
            new_hash = prepared.new_hash
        changes: dict[str, Any] = {}
        if username != user.username:
            changes["username"] = username
            changes["username_canonical"] = canonical_username(username)
        if custom != user.data:
            changes["data"] = custom
        if new_hash is not None:
            changes["password_hash"] = new_hash
        return await _write(ctx, tx, user, changes, request.strategy, dry_run=request.dry_run)


async def _prepare_password(
    ctx: RequestContext, password: str, against: str, username: str, email: str | None
) -> _PreparedPassword:
    hasher = ctx.services.hasher
    caller = None if ctx.is_master else await ctx.caller()
    if caller is not None and not signed_in_recently(ctx, caller.session.created_at, now_ms()):
        # Whether the document's password equals the stored one tells a caller without proof
        # of presence (a stolen token) whether a guess is right: the comparison is a password
        # check like a sign-in, throttled and recorded (SPEC §5), and a wrong guess changes
        # nothing.
        stored = await check_password(ctx, caller.user, password, password_hash=against)
        if stored is None:
            raise _reauthentication_required()
        return _PreparedPassword(password, stored, None)
    if (await hasher.verify(password, against)).ok:
        # The same password as stored: unchanged, no policy check, no revocation, and no
        # credential change, so no proof of presence is needed either.
        return _PreparedPassword(password, against, None)
    validate_password(password, username=username, email=email, field=("data", "password"))
    return _PreparedPassword(password, against, await hasher.hash(password))


def _reauthentication_required() -> AmendError:
    return AmendError(
        Reason.REAUTHENTICATION_REQUIRED,
        "confirm your current password or sign in again to change credentials",
        field=_PASSWORD_FIELD,
    )


_PASSWORD_FIELD = ("data", "password")


async def _write(
    ctx: RequestContext,
    tx: Tx,
    user: User,
    changes: dict[str, Any],
    strategy: Strategy,
    *,
    dry_run: bool,
) -> RecordUpdate | None:
    credential_change = "password_hash" in changes
    now = now_ms()
    if credential_change and not ctx.is_master:
        caller = await ctx.caller()
        require_recent_signin(ctx, caller.session.created_at, now, field=("data", "password"))
        await check_credential_changes(tx, ctx.services.settings, user_pk=user.pk, now=now)
    if dry_run or not changes:
        preview = user
        if changes:
            if "username_canonical" in changes:
                # A dry run writes nothing, so the unique index cannot answer; ask it directly.
                other = await users.by_identifier(
                    tx, user.endpoint_id, changes["username_canonical"], None
                )
                if other is not None and other.pk != user.pk:
                    raise AmendError(
                        Reason.USERNAME_TAKEN,
                        "this username is already taken",
                        field=("data", "username"),
                    )
            preview = _preview(user, changes)
        return RecordUpdate(preview, written=False, credentials_changed=False)
    updated = await users.update_versioned(tx, user, changes, field_prefix=("data",))
    if updated is None:
        return None
    fields = _changed_fields(user.document(), updated.document())
    if credential_change:
        change = CredentialChange(
            action="update_user",
            fields=("password",),
            actor=ctx.actor,
            audit_fields=(*fields, "password"),
            strategy=strategy.value,
        )
        await credential_change_step.committed(ctx, tx, updated, change, now=now)
    else:
        await change_log.user_changed(
            ctx,
            tx,
            user_pk=user.pk,
            project_id=(await ctx.project()).id,
            action="update_user",
            fields=fields,
            now=now,
            strategy=strategy.value,
            actor=ctx.actor,
        )
    return RecordUpdate(updated, written=True, credentials_changed=credential_change)


def _preview(user: User, changes: dict[str, Any]) -> User:
    return replace(
        user,
        username=changes.get("username", user.username),
        data=changes.get("data", user.data),
    )
