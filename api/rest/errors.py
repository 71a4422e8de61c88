"""Reason -> wire status/code for each reproduced API: SPEC §8's table, one row per reason.
A test keeps the table complete; `None` (SPEC's "—") marks a reason the API's document says
cannot occur there (it falls back to a plain 400 / 40001 should it ever happen)."""

from __future__ import annotations

from api.core.errors import Reason

R = Reason

# reason: (§7.1 record API: HTTP status, §7.2 credentials API: `code` (the HTTP status is
# code // 100), §7.3 profile API: HTTP status and the envelope's `status`).
SPEC_TABLE: dict[Reason, tuple[int | None, int | None, int | None]] = {
    R.MISSING_API_KEY: (403, 40302, None),
    R.INVALID_API_KEY: (400, 40302, None),
    R.ORIGIN_NOT_ALLOWED: (403, 40302, 403),
    R.ORIGIN_REQUIRED: (403, 40302, 403),
    R.INVALID_ENDPOINT: (400, 40001, None),
    R.MISSING_TOKEN: (401, 40101, 401),
    R.INVALID_TOKEN: (401, 40102, 401),
    R.SESSION_REVOKED: (401, 40102, 401),
    R.USER_NOT_FOUND: (401, 40102, 401),
    R.TOKEN_EXPIRED: (401, 40103, 401),
    R.INVALID_CREDENTIALS: (401, 40105, None),
    R.REAUTHENTICATION_REQUIRED: (401, 40104, None),
    R.NOT_OWNER: (400, None, None),
    R.PLAN_REQUIRED: (None, 40301, None),
    R.RATE_LIMITED: (429, 42901, 429),
    R.UNSUPPORTED_CONTENT_TYPE: (400, 40001, 400),
    R.EMPTY_BODY: (400, 40001, 400),
    R.MISSING_UNIQUE_ID: (400, None, None),
    R.INVALID_STRATEGY: (400, None, None),
    R.RECORD_NOT_FOUND: (400, None, None),
    R.REQUIRED_FIELD_MISSING: (400, None, None),
    R.NOT_AN_OBJECT: (400, None, None),
    R.TYPE_MISMATCH: (400, None, None),
    R.INVALID_FIELD: (400, 40001, 400),
    R.FIELD_NOT_ALLOWED: (400, 40001, 400),
    R.EMPTY_UPDATE: (400, 40001, 400),
    R.PASSWORD_POLICY: (400, 40002, None),
    R.INVALID_EMAIL: (None, 40003, None),
    R.EMAIL_TAKEN: (None, 40901, None),
    R.USERNAME_TAKEN: (400, None, 409),
    R.VERSION_CONFLICT: (412, None, 412),
    R.INVALID_CODE: (None, None, None),
    R.UNSUPPORTED_HASH: (None, None, None),  # import only: no request raises it
    R.PAYLOAD_TOO_LARGE: (413, 41301, 413),
    R.SERVICE_UNAVAILABLE: (503, 50301, 503),
}

CE_STATUS = {reason: row[0] for reason, row in SPEC_TABLE.items()}
USER_V1_CODE = {reason: row[1] for reason, row in SPEC_TABLE.items()}
ME_STATUS = {reason: row[2] for reason, row in SPEC_TABLE.items()}


def ce_status(reason: Reason) -> int:
    return CE_STATUS[reason] or 400


def user_v1_code(reason: Reason) -> int:
    return USER_V1_CODE[reason] or 40001


def me_status(reason: Reason) -> int:
    return ME_STATUS[reason] or 400
