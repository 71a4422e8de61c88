"""Queries and mutations: each parses its input, calls one service, maps the outcome."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

import strawberry
from starlette.responses import Response
from strawberry.types.maybe import Some

from api.core.errors import AmendError
from api.core.policy import DEFAULT_ENDPOINT
from api.graphql import errors
from api.graphql.context import Context
from api.graphql.inputs import (
    PasswordResetRequestInput,
    ResetPasswordInput,
    SignInInput,
    SignUpInput,
    UpdateCredentialsInput,
    UpdateMeInput,
)
from api.graphql.scalars import JSON
from api.graphql.types import (
    AuditConnection,
    AuditEdge,
    AuditEvent,
    AuthPayload,
    PageInfo,
    Record,
    Session,
    SessionInfo,
    UpdateCredentialsPayload,
    UpdateMePayload,
    UpdateStrategy,
    UpdateUserPayload,
    User,
    UserError,
)
from api.http.cookies import clear_session_cookie, set_session_cookie
from api.services import accounts, credentials, profile, records, recovery
from api.services import audit_log as audit_service

Info = strawberry.Info[Context, None]
T = TypeVar("T")


def _note_retry(info: Info, error: AmendError) -> None:
    response = info.context.response
    if error.retry_after is not None and isinstance(response, Response):
        response.headers["Retry-After"] = str(error.retry_after)


def _payload_errors(info: Info, error: AmendError) -> list[UserError]:
    _note_retry(info, error)
    return errors.to_payload_errors(error)


def _top_level(info: Info, error: AmendError) -> errors.AmendGraphQLError:
    _note_retry(info, error)
    return errors.top_level(error)


async def _answered(info: Info, outcome: Awaitable[T]) -> T:
    """The service's answer, or its error as a top-level GraphQL error."""
    try:
        return await outcome
    except AmendError as error:
        raise _top_level(info, error) from None


async def _credentials_payload(
    info: Info, change: Awaitable[credentials.CredentialsChange]
) -> UpdateCredentialsPayload:
    try:
        result = await change
    except AmendError as error:
        return UpdateCredentialsPayload(errors=_payload_errors(info, error))
    if result.reauthentication_required:
        _clear_cookie(info)
    return UpdateCredentialsPayload(
        user=User.from_view(result.user),
        reauthentication_required=result.reauthentication_required,
        pending_email=result.pending_email,
    )


def _set_cookie(info: Info, signed_in: accounts.SignedIn) -> None:
    response = info.context.response
    if isinstance(response, Response):
        set_session_cookie(response, info.context.settings, signed_in.token, signed_in.max_age)


def _clear_cookie(info: Info) -> None:
    response = info.context.response
    if isinstance(response, Response):
        clear_session_cookie(response, info.context.settings)


async def _auth_payload(info: Info, signing_in: Awaitable[accounts.SignedIn]) -> AuthPayload:
    """The payload of a sign-up or sign-in; on success the session cookie is set too."""
    try:
        signed_in = await signing_in
    except AmendError as error:
        return AuthPayload(errors=_payload_errors(info, error))
    _set_cookie(info, signed_in)
    return AuthPayload(
        token=signed_in.token,
        user=User.from_view(signed_in.user),
        session=Session.from_view(signed_in.session, current_id=signed_in.session.id),
    )


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user.")
    async def me(self, info: Info) -> User:
        return User.from_view(await _answered(info, accounts.me(info.context.auth)))

    @strawberry.field(description="The caller's sign-ins and sign-in attempts.")
    async def session(self, info: Info) -> SessionInfo:
        return SessionInfo.from_view(
            await _answered(info, accounts.session_info(info.context.auth))
        )

    @strawberry.field(description="A record of an endpoint: its owner or the master key.")
    async def record(self, info: Info, endpoint: str, unique_id: str) -> Record:
        user = await _answered(
            info, records.get_record(info.context.auth, endpoint=endpoint, unique_id=unique_id)
        )
        return Record.from_view(user)

    @strawberry.field(description="The caller's audit events, newest first (master: any user).")
    async def audit_log(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        unique_id: str | None = None,
    ) -> AuditConnection:
        page = await _answered(
            info,
            audit_service.audit_log(
                info.context.auth,
                first=20 if first is None else first,
                after=after,
                unique_id=unique_id,
            ),
        )
        return AuditConnection(
            edges=[AuditEdge(cursor=c, node=AuditEvent.from_view(e)) for c, e in page.events],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


def _maybe(value: Some[Any] | None) -> Any:
    return profile.UNSET if value is None else value.value


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a user in an endpoint and sign it in (API key).")
    async def sign_up(self, info: Info, input: SignUpInput) -> AuthPayload:
        signing_up = accounts.sign_up(
            info.context.auth,
            accounts.SignUpInput(
                endpoint=DEFAULT_ENDPOINT if input.endpoint is None else input.endpoint,
                username=input.username,
                password=input.password,
                email=input.email,
                first_name=input.first_name,
                last_name=input.last_name,
                data=input.data,
            ),
        )
        return await _auth_payload(info, signing_up)

    @strawberry.mutation(description="Sign in with a username or email (API key); sets the cookie.")
    async def sign_in(self, info: Info, input: SignInInput) -> AuthPayload:
        signing_in = accounts.sign_in(
            info.context.auth,
            endpoint=DEFAULT_ENDPOINT if input.endpoint is None else input.endpoint,
            identifier=input.identifier,
            password=input.password,
        )
        return await _auth_payload(info, signing_in)

    @strawberry.mutation(description="Revoke the current session and clear the cookie.")
    async def sign_out(self, info: Info) -> bool:
        await _answered(info, accounts.sign_out(info.context.auth))
        _clear_cookie(info)
        return True

    @strawberry.mutation(description="Revoke one of the caller's own sessions.")
    async def revoke_session(self, info: Info, id: strawberry.ID) -> bool:
        current = await _answered(info, accounts.revoke_session(info.context.auth, str(id)))
        if current:
            _clear_cookie(info)
        return True

    @strawberry.mutation(description="Update a record's document with a strategy.")
    async def update_user(
        self,
        info: Info,
        endpoint: str,
        unique_id: str,
        data: JSON,
        strategy: UpdateStrategy = UpdateStrategy.FORCE,
        expected_version: int | None = None,
        dry_run: bool = False,
    ) -> UpdateUserPayload:
        try:
            result = await records.update_record(
                info.context.auth,
                endpoint=endpoint,
                unique_id=unique_id,
                data=data,
                strategy=strategy.to_core(),
                expected_version=expected_version,
                dry_run=dry_run,
            )
        except AmendError as error:
            return UpdateUserPayload(errors=_payload_errors(info, error))
        if result.credentials_changed and not info.context.auth.is_master:
            _clear_cookie(info)
        return UpdateUserPayload(record=Record.from_view(result.record))

    @strawberry.mutation(description="Change email and/or password; every session is revoked.")
    async def update_credentials(
        self, info: Info, input: UpdateCredentialsInput
    ) -> UpdateCredentialsPayload:
        change = credentials.update_credentials(
            info.context.auth,
            email=input.email,
            password=input.password,
            current_password=input.current_password,
            verifiable=True,
        )
        return await _credentials_payload(info, change)

    @strawberry.mutation(description="Apply a pending email change with the code sent to it.")
    async def confirm_email_change(self, info: Info, code: str) -> UpdateCredentialsPayload:
        try:
            result = await credentials.confirm_email_change(info.context.auth, code)
        except AmendError as error:
            return UpdateCredentialsPayload(errors=_payload_errors(info, error))
        _clear_cookie(info)
        return UpdateCredentialsPayload(
            user=User.from_view(result.user),
            reauthentication_required=result.reauthentication_required,
        )

    @strawberry.mutation(
        description="Mail a password-reset link when the account exists; true either way."
    )
    async def request_password_reset(self, info: Info, input: PasswordResetRequestInput) -> bool:
        return await _answered(
            info,
            recovery.request_password_reset(
                info.context.auth,
                endpoint=DEFAULT_ENDPOINT if input.endpoint is None else input.endpoint,
                identifier=input.identifier,
            ),
        )

    @strawberry.mutation(description="Set a new password with a reset token; signs out all.")
    async def reset_password(
        self, info: Info, input: ResetPasswordInput
    ) -> UpdateCredentialsPayload:
        return await _credentials_payload(
            info,
            recovery.reset_password(info.context.auth, token=input.token, password=input.password),
        )

    @strawberry.mutation(description="Undo an email change with the token sent to the old address.")
    async def revert_email_change(self, info: Info, token: str) -> UpdateCredentialsPayload:
        return await _credentials_payload(
            info, recovery.revert_email_change(info.context.auth, token=token)
        )

    @strawberry.mutation(description="Mail a verification link to the caller's unverified address.")
    async def send_email_verification(self, info: Info) -> bool:
        return await _answered(info, recovery.send_email_verification(info.context.auth))

    @strawberry.mutation(description="Mark the email address verified with the token mailed to it.")
    async def verify_email(self, info: Info, token: str) -> UpdateCredentialsPayload:
        return await _credentials_payload(
            info, recovery.verify_email(info.context.auth, token=token)
        )

    @strawberry.mutation(description="Change the caller's own profile fields and custom data.")
    async def update_me(self, info: Info, input: UpdateMeInput) -> UpdateMePayload:
        changes = profile.ProfileChanges(
            first_name=_maybe(input.first_name),
            last_name=_maybe(input.last_name),
            username=_maybe(input.username),
            phone_number=_maybe(input.phone_number),
            image_url=_maybe(input.image_url),
            data=_maybe(input.data),
            expected_version=input.expected_version,
        )
        auth = info.context.auth
        try:
            user = await profile.update_me(auth, changes)
        except AmendError as error:
            return UpdateMePayload(errors=_payload_errors(info, error))
        return UpdateMePayload(user=User.from_view(user), auth=auth)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The caller's User after every committed change.")
    async def me_updated(self, info: Info) -> AsyncGenerator[User, None]:
        auth = info.context.auth
        params = info.context.connection_params
        if isinstance(params, dict) and isinstance(params.get("token"), str):
            # `connection_init` carries the token when the socket has no cookie.
            auth = auth.with_token(params["token"])
        caller = await _answered(info, accounts.me(auth))
        async for _ in auth.services.events.watch(caller.pk):
            try:
                # Every event re-checks the session: a revoked session ends the stream.
                user = await accounts.me(auth.fresh())
            except AmendError:
                return
            yield User.from_view(user)
