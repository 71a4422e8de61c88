"""§7.1 — the record API of an authentication endpoint: `/1/ce/{endpoint}`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.core.errors import AmendError, Reason
from api.core.strategy import check_auth_document, parse_strategy
from api.rest import body as bodies
from api.rest.common import context_of, signed_in, signed_out
from api.rest.envelopes import ce_error, ce_record
from api.rest.raises import API_KEY, BODY, CALLER, ENDPOINT, RECORD_CHANGE, SIGN_IN, raises
from api.services import accounts, records
from api.services.context import RequestContext


async def _require_key_and_id(request: Request, ctx: RequestContext) -> str:
    # The record API names its project by API key on every request, as its document says.
    await ctx.api_key_project()
    unique_id = request.query_params.get("uniqueId")
    if not unique_id:
        raise AmendError(Reason.MISSING_UNIQUE_ID, "uniqueId is missing from the URL")
    return unique_id


def _data_only(request: Request) -> bool:
    return request.query_params.get("dataOnly") == "true"


@raises(
    API_KEY, ENDPOINT, CALLER, (Reason.MISSING_UNIQUE_ID, Reason.NOT_OWNER, Reason.RECORD_NOT_FOUND)
)
async def read(request: Request) -> Response:
    ctx = context_of(request)
    try:
        unique_id = await _require_key_and_id(request, ctx)
        user = await records.get_record(
            ctx, endpoint=request.path_params["endpoint"], unique_id=unique_id
        )
    except AmendError as error:
        return ce_error(error)
    return ce_record(user, data_only=_data_only(request))


@raises(
    API_KEY,
    ENDPOINT,
    CALLER,
    BODY,
    RECORD_CHANGE,
    (
        Reason.MISSING_UNIQUE_ID,
        Reason.NOT_OWNER,
        Reason.RECORD_NOT_FOUND,
        Reason.INVALID_STRATEGY,
        Reason.VERSION_CONFLICT,
    ),
    (Reason.REAUTHENTICATION_REQUIRED, Reason.RATE_LIMITED),
)
async def update(request: Request) -> Response:
    ctx = context_of(request)
    try:
        unique_id = await _require_key_and_id(request, ctx)
        strategy = parse_strategy(request.query_params.get("strategy"))
        expected = bodies.if_match(request)
        data = await bodies.json_or_text(request)
        result = await records.update_record(
            ctx,
            endpoint=request.path_params["endpoint"],
            unique_id=unique_id,
            data=data,
            strategy=strategy,
            expected_version=expected,
        )
    except AmendError as error:
        return ce_error(error)
    response = ce_record(result.record, data_only=_data_only(request))
    if result.credentials_changed and not ctx.is_master:
        signed_out(request, response)
    return response


def _credentials(body: Any) -> tuple[str, str, dict[str, Any]]:
    doc = check_auth_document(body)
    assert doc.password is not None  # a JSON body cannot hold the "kept" marker
    return doc.username, doc.password, doc.data


@raises(API_KEY, ENDPOINT, BODY, RECORD_CHANGE, (Reason.RATE_LIMITED,))
async def create(request: Request) -> Response:
    ctx = context_of(request)
    try:
        await ctx.api_key_project()
        body = await bodies.json_or_text(request)
        username, password, data = _credentials(body)
        result = await accounts.sign_up(
            ctx,
            accounts.SignUpInput(
                endpoint=request.path_params["endpoint"],
                username=username,
                password=password,
                data=data,
            ),
        )
    except AmendError as error:
        return ce_error(error)
    return signed_in(request, ce_record(result.user, status=201), result)


@raises(API_KEY, ENDPOINT, BODY, (Reason.NOT_AN_OBJECT, Reason.REQUIRED_FIELD_MISSING), SIGN_IN)
async def login(request: Request) -> Response:
    ctx = context_of(request)
    try:
        await ctx.api_key_project()
        body = await bodies.json_or_text(request)
        if not isinstance(body, dict):
            raise AmendError(Reason.NOT_AN_OBJECT, "the body must be a JSON object")
        username = bodies.optional_string(body, "username")
        password = bodies.optional_string(body, "password")
        if not username or not password:
            raise AmendError(Reason.REQUIRED_FIELD_MISSING, "username and password are required")
        result = await accounts.sign_in(
            ctx, endpoint=request.path_params["endpoint"], identifier=username, password=password
        )
    except AmendError as error:
        return ce_error(error)
    return signed_in(request, ce_record(result.user), result)


async def record(request: Request) -> Response:
    """One route, three methods: GET (and HEAD) reads, PUT updates, POST creates (sign-up)."""
    if request.method in ("GET", "HEAD"):
        return await read(request)
    if request.method == "PUT":
        return await update(request)
    return await create(request)
