"""Access tokens: PyJWT, HS256 only, every registered claim required."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from api.core import ids
from api.core.errors import AmendError, Reason

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "sid"]
# Verified tokens remembered, and for how long at most (seconds). About 0.6 KiB each.
VERIFIED_CACHE_SIZE = 16_384
VERIFIED_CACHE_TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class Claims:
    project_id: str
    unique_id: str
    session_id: str  # hex part
    issued_at: int
    expires_at: int


class TokenService:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        previous_secrets: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._verify_keys = (secret, *previous_secrets)
        self._issuer = issuer
        self._clock = clock
        # token -> (claims, remembered until). Only the exact string that verified is a key,
        # so a hit proves what the signature check proved; expiry is still checked each time.
        self._verified: dict[str, tuple[Claims, float]] = {}

    def issue(
        self, *, project_id: str, unique_id: str, session_hex: str, iat: int, exp: int
    ) -> str:
        payload = {
            "iss": self._issuer,
            "aud": project_id,
            "sub": unique_id,
            "sid": ids.session_id(session_hex),
            "iat": iat,
            "exp": exp,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> Claims:
        """Verify signature, algorithm, issuer and expiry; the audience is checked by the
        caller against the project the request names (the project is not known here).

        A token that verified recently is not verified again (the HMAC and claim checks are
        a large share of a small request); its expiry is. The session behind it is checked
        by the caller on every request either way."""
        now = self._clock()
        hit = self._verified.get(token)
        if hit is not None:
            claims, until = hit
            if now < until and now < claims.expires_at:
                return claims
            del self._verified[token]
        claims = self._verify(token)
        verified = self._verified
        if len(verified) >= VERIFIED_CACHE_SIZE:
            del verified[next(iter(verified))]  # the oldest entry
        verified[token] = (claims, now + VERIFIED_CACHE_TTL_S)
        return claims

    def _verify(self, token: str) -> Claims:
        last_error: Reason = Reason.INVALID_TOKEN
        for key in self._verify_keys:
            try:
                payload = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],  # pinned: never trust the header's alg
                    issuer=self._issuer,
                    options={"require": REQUIRED_CLAIMS, "verify_aud": False},
                )
            # ExpiredSignatureError is a subclass of InvalidTokenError: catch it first.
            except jwt.ExpiredSignatureError:
                last_error = Reason.TOKEN_EXPIRED
                continue
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError:
                raise AmendError(Reason.INVALID_TOKEN, "the access token is not valid") from None
            return _claims(payload)
        if last_error is Reason.TOKEN_EXPIRED:
            raise AmendError(Reason.TOKEN_EXPIRED, "the access token has expired")
        raise AmendError(Reason.INVALID_TOKEN, "the access token is not valid")


def _claims(payload: dict[str, object]) -> Claims:
    aud, sub, sid = payload.get("aud"), payload.get("sub"), payload.get("sid")
    iat, exp = payload.get("iat"), payload.get("exp")
    session_hex = ids.parse_session_id(sid) if isinstance(sid, str) else None
    if (
        not isinstance(aud, str)
        or not isinstance(sub, str)
        or not ids.is_hex_id(sub)
        or session_hex is None
        or not isinstance(iat, int)
        or not isinstance(exp, int)
    ):
        raise AmendError(Reason.INVALID_TOKEN, "the access token is not valid")
    return Claims(
        project_id=aud, unique_id=sub, session_id=session_hex, issued_at=iat, expires_at=exp
    )
