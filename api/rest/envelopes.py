"""The three documented envelopes, and the record/profile bodies inside them."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api.core import ids
from api.core.clock import iso_ms, iso_seconds
from api.core.errors import AmendError
from api.core.models import Session, SessionInfo, SignInAttempt, User
from api.rest.errors import ce_status, me_status, user_v1_code


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def etag(version: int) -> str:
    return f'"{version}"'


def _retry(error: AmendError) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}


# §7.1 -----------------------------------------------------------------------------------


def record_body(user: User) -> dict[str, Any]:
    return {
        "uniqueId": user.unique_id,
        "data": user.document(),
        "createdAt": iso_ms(user.created_at),
        "updatedAt": iso_ms(user.updated_at),
    }


def ce_record(user: User, *, status: int = 200, data_only: bool = False) -> JSON:
    body = user.document() if data_only else record_body(user)
    return JSON(body, status_code=status, headers={"ETag": etag(user.version)})


def ce_error(error: AmendError) -> JSON:
    status = ce_status(error.reason)
    body = {"status": status, "error": error.reason.value, "message": error.message}
    return JSON(body, status_code=status, headers=_retry(error))


# §7.2 -----------------------------------------------------------------------------------


def user_v1_ok(result: Any = None) -> JSON:
    return JSON({"code": 0, "message": "", "result": result})


def user_v1_error(error: AmendError) -> JSON:
    code = user_v1_code(error.reason)
    body = {"code": code, "message": error.message, "result": None}
    return JSON(body, status_code=code // 100, headers=_retry(error))


# §7.3 -----------------------------------------------------------------------------------


def me_user(user: User) -> dict[str, Any]:
    return {
        "id": user.public_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "email": user.email,
        "phone_number": user.phone_number,
        "image_url": user.image_url,
        "two_factor_enabled": user.two_factor_enabled,
        "email_verified": user.email_verified,
        "phone_verified": user.phone_verified,
        "created_at": iso_seconds(user.created_at),
        "updated_at": iso_seconds(user.updated_at),
    }


def _signin(session: Session) -> dict[str, Any]:
    return {
        "id": session.public_id,
        "user_id": ids.user_id(session.unique_id),
        "created_at": iso_seconds(session.created_at),
    }


def _attempt(attempt: SignInAttempt) -> dict[str, Any]:
    return {
        "id": str(attempt.id),
        "identifier": attempt.identifier,
        "succeeded": attempt.succeeded,
        "reason": attempt.reason,
        "created_at": iso_seconds(attempt.created_at),
    }


def me_session(info: SessionInfo) -> dict[str, Any]:
    signins = [_signin(s) for s in info.signins]
    active = info.active_signin
    # The active session is one of the live ones: its body is written once, and used twice.
    current = None
    for session, body in zip(info.signins, signins, strict=True):
        if session is active:
            current = body
            break
    return {
        "signin_attempts": [_attempt(a) for a in info.signin_attempts],
        "signins": signins,
        "signup_attempts": [_attempt(a) for a in info.signup_attempts],
        "active_signin": current or (_signin(active) if active else None),
    }


def me_ok(user: User, info: SessionInfo) -> JSON:
    body = {
        "status": 200,
        "message": "",
        "data": me_user(user),
        "session": me_session(info),
        "errors": [],
    }
    return JSON(body, headers={"ETag": etag(user.version)})


def me_error(error: AmendError) -> JSON:
    status = me_status(error.reason)
    errors = [
        {
            "code": p.reason.value,
            "message": p.message,
            "field": ".".join(p.field) if p.field else None,
        }
        for p in error.problems
    ]
    body = {
        "status": status,
        "message": error.message,
        "data": None,
        "session": None,
        "errors": errors,
    }
    return JSON(body, status_code=status, headers=_retry(error))
