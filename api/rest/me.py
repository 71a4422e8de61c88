"""§7.3 — the profile API: `GET /me` and `PATCH /me`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.core.errors import AmendError, Problem, Reason
from api.rest import body as bodies
from api.rest.common import context_of
from api.rest.envelopes import me_error, me_ok
from api.rest.raises import CALLER, JSON_OBJECT, raises
from api.services import accounts, profile

FIELDS = frozenset({"first_name", "last_name", "username", "phone_number", "image_url"})


# Domain field names that this API spells otherwise (the body's own names are the domain's).
WIRE_NAMES = {"expected_version": "If-Match"}


def _on_this_api(problem: Problem) -> Problem:
    """SPEC §8 has no REQUIRED_FIELD_MISSING on §7.3: a blank username is refused here as an
    invalid field, like a cleared one (`null`). Field paths take this API's names."""
    reason = problem.reason
    if reason is Reason.REQUIRED_FIELD_MISSING:
        reason = Reason.INVALID_FIELD
    field = problem.field
    if field:
        field = (WIRE_NAMES.get(field[0], field[0]), *field[1:])
    return Problem(reason, problem.message, field)


@raises(CALLER)
async def read(request: Request) -> Response:
    ctx = context_of(request)
    try:
        caller = await ctx.caller()
        info = await accounts.session_info(ctx)
    except AmendError as error:
        return me_error(error)
    return me_ok(caller.user, info)


@raises(
    CALLER,
    JSON_OBJECT,
    (Reason.EMPTY_UPDATE, Reason.USERNAME_TAKEN, Reason.VERSION_CONFLICT),
)
async def update(request: Request) -> Response:
    ctx = context_of(request)
    try:
        await ctx.caller()
        expected = bodies.if_match(request)
        body = await bodies.json_object(request, allowed=FIELDS)
        # `json_object` let only FIELDS through: each member is a field of the change.
        changes = profile.ProfileChanges(**body, expected_version=expected)
        user = await profile.update_me(ctx, changes)
        info = await accounts.session_info(ctx)
    except AmendError as error:
        problems = [_on_this_api(p) for p in error.problems]
        return me_error(error if problems == list(error.problems) else AmendError.of(problems))
    return me_ok(user, info)


async def me(request: Request) -> Response:
    # Starlette routes HEAD wherever GET is routed: HEAD reads too.
    return await (read(request) if request.method in ("GET", "HEAD") else update(request))
