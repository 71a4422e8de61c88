"""§7.2 — the credentials API: `/api/user/v1/update` and `/api/user/v1/login`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.core.errors import AmendError, Reason
from api.core.policy import DEFAULT_ENDPOINT
from api.rest import body as bodies
from api.rest.common import context_of, signed_out
from api.rest.envelopes import user_v1_error, user_v1_ok
from api.rest.raises import API_KEY, CALLER, ENDPOINT, JSON_OBJECT, SIGN_IN, raises
from api.services import accounts, credentials

FIELDS = frozenset({"eml", "pwd"})


@raises(
    CALLER,
    JSON_OBJECT,
    (Reason.PLAN_REQUIRED, Reason.PASSWORD_POLICY, Reason.INVALID_EMAIL, Reason.EMAIL_TAKEN),
    (Reason.REAUTHENTICATION_REQUIRED, Reason.RATE_LIMITED),
)
async def update(request: Request) -> Response:
    ctx = context_of(request)
    try:
        await ctx.caller()
        body = await bodies.json_object(request, allowed=FIELDS)
        await credentials.update_credentials(
            ctx,
            email=bodies.optional_string(body, "eml"),
            password=bodies.optional_string(body, "pwd"),
            # This API has no current-password field: a recent sign-in is the proof.
            current_password=None,
        )
    except AmendError as error:
        return user_v1_error(error)
    # Every token of the user is now invalid, this one included.
    return signed_out(request, user_v1_ok())


@raises(API_KEY, ENDPOINT, JSON_OBJECT, SIGN_IN)
async def login(request: Request) -> Response:
    ctx = context_of(request)
    try:
        await ctx.api_key_project()
        body = await bodies.json_object(request, allowed=FIELDS)
        email = bodies.optional_string(body, "eml")
        password = bodies.optional_string(body, "pwd")
        if not email or not password:
            raise AmendError(Reason.INVALID_FIELD, "eml and pwd are required")
        result = await accounts.sign_in(
            ctx,
            endpoint=request.query_params.get("endpoint", DEFAULT_ENDPOINT),
            identifier=email,
            password=password,
        )
    except AmendError as error:
        return user_v1_error(error)
    return user_v1_ok({"token": result.token})
