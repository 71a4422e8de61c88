"""Every reason has an entry in each REST API's table, with the values of SPEC §8."""

from __future__ import annotations

import pytest

from api.core.errors import Reason
from api.rest import ce, me, user_v1
from api.rest.errors import CE_STATUS, ME_STATUS, USER_V1_CODE, ce_status, me_status, user_v1_code
from api.rest.openapi import CE, ME, USER_V1, openapi_document
from api.rest.raises import reasons_of


@pytest.mark.parametrize("table", [CE_STATUS, USER_V1_CODE, ME_STATUS])
def test_table_covers_every_reason(table: dict[Reason, int | None]) -> None:
    assert set(table) == set(Reason)


def test_user_v1_codes_divide_into_their_http_status() -> None:
    for reason, code in USER_V1_CODE.items():
        if code is not None:
            assert code // 100 in (400, 401, 403, 409, 413, 429, 503), reason


@pytest.mark.parametrize(
    ("reason", "ce", "v1", "me"),
    [
        (Reason.MISSING_API_KEY, 403, 40302, None),
        (Reason.INVALID_API_KEY, 400, 40302, None),
        (Reason.ORIGIN_NOT_ALLOWED, 403, 40302, 403),
        (Reason.INVALID_ENDPOINT, 400, 40001, None),
        (Reason.MISSING_TOKEN, 401, 40101, 401),
        (Reason.SESSION_REVOKED, 401, 40102, 401),
        (Reason.TOKEN_EXPIRED, 401, 40103, 401),
        (Reason.INVALID_CREDENTIALS, 401, 40105, None),
        (Reason.REAUTHENTICATION_REQUIRED, 401, 40104, None),
        (Reason.NOT_OWNER, 400, None, None),
        (Reason.PLAN_REQUIRED, None, 40301, None),
        (Reason.RATE_LIMITED, 429, 42901, 429),
        (Reason.EMPTY_BODY, 400, 40001, 400),
        (Reason.PASSWORD_POLICY, 400, 40002, None),
        (Reason.INVALID_EMAIL, None, 40003, None),
        (Reason.EMAIL_TAKEN, None, 40901, None),
        (Reason.USERNAME_TAKEN, 400, None, 409),
        (Reason.VERSION_CONFLICT, 412, None, 412),
        (Reason.PAYLOAD_TOO_LARGE, 413, 41301, 413),
        (Reason.SERVICE_UNAVAILABLE, 503, 50301, 503),
    ],
)
def test_spec_table_rows(reason: Reason, ce: int | None, v1: int | None, me: int | None) -> None:
    assert (CE_STATUS[reason], USER_V1_CODE[reason], ME_STATUS[reason]) == (ce, v1, me)


def test_reasons_that_cannot_occur_fall_back_to_a_plain_client_error() -> None:
    assert ce_status(Reason.EMAIL_TAKEN) == 400
    assert user_v1_code(Reason.NOT_OWNER) == 40001
    assert me_status(Reason.PASSWORD_POLICY) == 400


OPERATIONS = {
    "ceReadRecord": (CE, ce.read),
    "ceUpdateRecord": (CE, ce.update),
    "ceSignUp": (CE, ce.create),
    "ceSignIn": (CE, ce.login),
    "userV1UpdatePut": (USER_V1, user_v1.update),
    "userV1UpdatePost": (USER_V1, user_v1.update),
    "userV1Login": (USER_V1, user_v1.login),
    "meRead": (ME, me.read),
    "meUpdate": (ME, me.update),
}


def test_each_operation_documents_the_statuses_of_the_reasons_its_handler_declares() -> None:
    doc = openapi_document()
    operations = {
        op["operationId"]: op
        for item in doc["paths"].values()
        for key, op in item.items()
        if key != "parameters"
    }
    assert set(operations) == set(OPERATIONS)
    for operation_id, (api, handler) in OPERATIONS.items():
        documented = {int(s) for s in operations[operation_id]["responses"] if int(s) >= 400}
        assert documented == {api.status(r) for r in reasons_of(handler)}, operation_id
        # The application answers these around every route.
        assert {413, 503} <= documented, operation_id
        for status in documented:
            assert f"{api.prefix}Error{status}" in doc["components"]["schemas"]


def test_sign_up_documents_its_throttle() -> None:
    responses = openapi_document()["paths"]["/1/ce/{endpoint}"]["post"]["responses"]
    assert "429" in responses
