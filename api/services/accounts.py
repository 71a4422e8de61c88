"""Sign-up, sign-in, sign-out and session revocation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.core import ids
from api.core.clock import now_ms
from api.core.errors import AmendError, Problem, Reason
from api.core.models import Actor, Endpoint, Session, SessionInfo, User
from api.core.policy import (
    canonical_email,
    canonical_username,
    normalize_email,
    validate_custom_data,
    validate_name,
    validate_password,
    validate_username,
)
from api.services import change_log
from api.services.context import AuthenticatedCaller, RequestContext
from api.services.ratelimit import check_signups, reserve_attempt
from api.store import attempts, audit, sessions, users

RESERVED_DATA_KEYS = ("username", "password")


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    user: User
    session: Session
    max_age: int  # seconds, for the cookie


@dataclass(frozen=True, slots=True)
class SignUpInput:
    endpoint: str
    username: str
    password: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    data: Any = None


def check_reserved_keys(data: dict[str, object], field: tuple[str, ...]) -> list[Problem]:
    return [
        Problem(Reason.FIELD_NOT_ALLOWED, f"'{key}' is not a custom field", (*field, key))
        for key in RESERVED_DATA_KEYS
        if key in data
    ]


def _collect(problems: list[Problem], fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except AmendError as error:
        problems.extend(error.problems)
        return None


async def _start_session(
    ctx: RequestContext, tx: Any, user: User, project_id: str, now: int
) -> tuple[Session, str]:
    settings = ctx.services.settings
    session = await sessions.create(
        tx,
        session_hex=ids.new_hex_id(),
        user=user,
        now=now,
        ttl_ms=settings.token_ttl_seconds * 1000,
        user_agent=ctx.credentials.user_agent,
        ip=ctx.ip,
    )
    token = ctx.services.tokens.issue(
        project_id=project_id,
        unique_id=user.unique_id,
        session_hex=session.id,
        iat=now // 1000,
        exp=session.expires_at // 1000,
    )
    return session, token


async def sign_up(ctx: RequestContext, data: SignUpInput) -> SignedIn:
    """Create an account and its first session.

    Every attempt from a client address counts toward its sign-up limit, refused ones too (a
    taken name or address, a weak password): otherwise refused sign-ups would list the taken
    names and addresses without limit. Nothing is hashed until the attempt can succeed.
    """
    project = await ctx.api_key_project()
    endpoint = await ctx.endpoint(data.endpoint)
    settings, ip = ctx.services.settings, ctx.ip
    if ip is not None:  # before anything else: a refused flood costs no CPU
        async with ctx.services.db.read() as tx:
            await check_signups(tx, settings, ip=ip, now=now_ms())
    try:
        return await _create_account(ctx, project.id, endpoint, data)
    except AmendError as error:
        if ip is not None and error.reason is not Reason.RATE_LIMITED:
            async with ctx.services.db.write() as tx:
                await attempts.record(
                    tx,
                    endpoint_id=endpoint.id,
                    user_pk=None,
                    kind="signup",
                    identifier=identifier_keys(data.username)[0],
                    ip=ip,
                    succeeded=False,
                    reason=error.reason.value,
                    now=now_ms(),
                )
        raise


def _validated(data: SignUpInput) -> dict[str, Any]:
    """The new account's columns (the password not yet hashed), or every problem at once."""
    problems: list[Problem] = []
    username = _collect(problems, validate_username, data.username, field=("username",))
    email = None
    if data.email is not None:
        email = _collect(problems, normalize_email, data.email, field=("email",))
    first_name = data.first_name
    if first_name is not None:
        first_name = _collect(problems, validate_name, first_name, field=("first_name",))
    last_name = data.last_name
    if last_name is not None:
        last_name = _collect(problems, validate_name, last_name, field=("last_name",))
    custom: dict[str, object] = {}
    if data.data is not None:
        custom = _collect(problems, validate_custom_data, data.data, field=("data",)) or {}
        problems.extend(check_reserved_keys(custom, ("data",)))
    if not problems:
        _collect(
            problems,
            validate_password,
            data.password,
            username=username,
            email=email,
            field=("password",),
        )
    if problems:
        raise AmendError.of(problems)
    return {
        "username": username,
        "username_canonical": canonical_username(username),
        "email": email,
        "email_canonical": canonical_email(email) if email else None,
        "first_name": first_name,
        "last_name": last_name,
        "data": custom,
    }


async def _create_account(
    ctx: RequestContext, project_id: str, endpoint: Endpoint, data: SignUpInput
) -> SignedIn:
    values = _validated(data)
    settings, ip = ctx.services.settings, ctx.ip
    async with ctx.services.db.read() as tx:
        # Before the hash: a taken name or address must not cost an argon2 computation.
        taken = await users.by_identifier(
            tx, endpoint.id, values["username_canonical"], values["email_canonical"]
        )
    if taken is not None:
        if canonical_username(taken.username) == values["username_canonical"]:
            raise AmendError(
                Reason.USERNAME_TAKEN, "this username is already taken", field=("username",)
            )
        raise AmendError(Reason.EMAIL_TAKEN, "this email address is already used", field=("email",))
    password_hash = await ctx.services.hasher.hash(data.password)
    now = now_ms()
    async with ctx.services.db.write() as tx:
        if ip is not None:  # again, exactly: concurrent sign-ups all passed the first check
            await attempts.lock(tx, f"signup-ip:{ip}")
            await check_signups(tx, settings, ip=ip, now=now)
        user = await users.insert_user(
            tx,
            endpoint_name=endpoint.name,
            values={
                **values,
                "endpoint_id": endpoint.id,
                "unique_id": ids.new_hex_id(),
                "password_hash": password_hash,
            },
        )
        await attempts.record(
            tx,
            endpoint_id=endpoint.id,
            user_pk=user.pk,
            kind="signup",
            identifier=values["username_canonical"],
            ip=ip,
            succeeded=True,
            reason=None,
            now=now,
        )
        await audit.record(
            tx,
            project_id=project_id,
            user_pk=user.pk,
            action="sign_up",
            fields=["username", *(["email"] if user.email else []), "password"],
            strategy=None,
            actor=Actor.USER,
            ip=ip,
            now=now,
        )
        session, token = await _start_session(ctx, tx, user, project_id, now)
    return SignedIn(token, user, session, settings.token_ttl_seconds)


def identifier_keys(identifier: str) -> tuple[str, str | None]:
    """The canonical username form, and the canonical email form when it is an address."""
    # Usernames never hold control characters or lone surrogates, so such an identifier names
    # nobody; replace them so the attempt can still be recorded on every backend.
    identifier = identifier.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    email_key = None
    if "@" in identifier:
        try:
            email_key = canonical_email(normalize_email(identifier, field=("identifier",)))
        except AmendError:
            email_key = None
    return canonical_username(identifier), email_key


async def sign_in(
    ctx: RequestContext, *, endpoint: str, identifier: str, password: str
) -> SignedIn:
    project = await ctx.api_key_project()
    ep = await ctx.endpoint(endpoint)
    services = ctx.services
    username_key, email_key = identifier_keys(identifier)
    async with services.db.write() as tx:
        user = await users.by_identifier(tx, ep.id, username_key, email_key)
        attempt = await reserve_attempt(
            tx,
            services.settings,
            endpoint_id=ep.id,
            user_pk=user.pk if user else None,
            kind="signin",
            identifier=username_key,
            ip=ctx.ip,
        )
    # Unknown users cost one verification too, so timing does not reveal who exists.
    if user is None:
        await services.hasher.dummy_verify(password)
        verified = False
        new_hash = None
    else:
        result = await services.hasher.verify(password, user.password_hash)
        verified, new_hash = result.ok, result.new_hash
    now = now_ms()
    async with services.db.write() as tx:
        await attempts.finish(
            tx, attempt, succeeded=verified, reason=None if verified else "invalid_credentials"
        )
        if user is not None and verified:
            if new_hash is not None:
                await users.set_password_hash(tx, user.pk, new_hash, user.password_hash)
            session, token = await _start_session(ctx, tx, user, project.id, now)
            return SignedIn(token, user, session, services.settings.token_ttl_seconds)
    raise AmendError(
        Reason.INVALID_CREDENTIALS, "wrong identifier or password", field=("identifier",)
    )


async def sign_out(ctx: RequestContext) -> None:
    caller = await ctx.caller()
    await _end_session(ctx, caller, caller.session.id, action="sign_out")


async def revoke_session(ctx: RequestContext, session_id: str) -> bool:
    """Revoke one of the caller's sessions; True when it was the current one."""
    caller = await ctx.caller()
    hex_id = ids.parse_session_id(session_id)
    revoked = hex_id is not None and await _end_session(
        ctx, caller, hex_id, action="revoke_session"
    )
    if not revoked:
        # The same answer whether the id exists for someone else or not at all.
        raise AmendError(Reason.RECORD_NOT_FOUND, "no such session", field=("id",))
    return hex_id == caller.session.id


async def _end_session(
    ctx: RequestContext, caller: AuthenticatedCaller, session_hex: str, *, action: str
) -> bool:
    """Revoke one of the caller's sessions; True when it was live. Signing out is announced
    and audited even when a concurrent revocation got there first; revoking another session
    only when it ended here."""
    now = now_ms()
    async with ctx.services.db.write() as tx:
        revoked = await sessions.revoke(
            tx, session_hex=session_hex, user_pk=caller.user.pk, now=now
        )
        if revoked or action == "sign_out":
            await change_log.user_changed(
                ctx,
                tx,
                user_pk=caller.user.pk,
                project_id=caller.project.id,
                action=action,
                fields=(),
                now=now,
            )
    return revoked


async def me(ctx: RequestContext) -> User:
    return (await ctx.caller()).user


async def session_info(ctx: RequestContext) -> SessionInfo:
    caller = await ctx.caller()
    now = now_ms()
    async with ctx.services.db.read() as tx:
        active = await sessions.active_for_user(tx, caller.user, now)
        signins, signups = await attempts.recent_for_user(tx, user_pk=caller.user.pk)
    current = None
    for session in active:  # (a loop: a generator left unfinished is closed by an exception)
        if session.id == caller.session.id:
            current = session
            break
    return SessionInfo(
        signin_attempts=tuple(signins),
        signins=tuple(active),
        signup_attempts=tuple(signups),
        active_signin=current,
    )
