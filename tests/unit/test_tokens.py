from __future__ import annotations

import time

import jwt
import pytest

from api.core.errors import AmendError, Reason
from api.security.tokens import VERIFIED_CACHE_SIZE, VERIFIED_CACHE_TTL_S, TokenService

SECRET = "s" * 40
HEX = "0123456789abcdef0123456789abcdef"


def _service() -> TokenService:
    return TokenService(SECRET, issuer="amend")


def _issue(**overrides: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "amend",
        "aud": "prj_x",
        "sub": HEX,
        "sid": "signin_" + HEX,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    for key in [k for k, v in claims.items() if v is None]:
        del claims[key]
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _reason(token: str) -> Reason:
    with pytest.raises(AmendError) as info:
        _service().decode(token)
    return info.value.reason


def test_issued_token_round_trips() -> None:
    now = int(time.time())
    token = _service().issue(
        project_id="prj_x", unique_id=HEX, session_hex=HEX, iat=now, exp=now + 5
    )
    claims = _service().decode(token)
    assert (claims.project_id, claims.unique_id, claims.session_id) == ("prj_x", HEX, HEX)


def test_expired_token_is_token_expired() -> None:
    assert _reason(_issue(exp=int(time.time()) - 10)) is Reason.TOKEN_EXPIRED


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "sub", "sid"])
def test_token_missing_a_required_claim_is_invalid(claim: str) -> None:
    assert _reason(_issue(**{claim: None})) is Reason.INVALID_TOKEN


def test_token_from_another_issuer_is_invalid() -> None:
    assert _reason(_issue(iss="someone-else")) is Reason.INVALID_TOKEN


def test_token_signed_with_another_key_is_invalid() -> None:
    now = int(time.time())
    token = TokenService("t" * 40, issuer="amend").issue(
        project_id="p", unique_id=HEX, session_hex=HEX, iat=now, exp=now + 60
    )
    assert _reason(token) is Reason.INVALID_TOKEN


def test_alg_none_is_refused() -> None:
    now = int(time.time())
    payload = {"iss": "amend", "aud": "p", "sub": HEX, "sid": "signin_" + HEX, "iat": now}
    token = jwt.encode({**payload, "exp": now + 60}, None, algorithm="none")
    assert _reason(token) is Reason.INVALID_TOKEN


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_hs512_with_the_same_secret_is_refused() -> None:
    now = int(time.time())
    claims = {"iss": "amend", "aud": "p", "sub": HEX, "sid": "signin_" + HEX, "iat": now}
    token = jwt.encode({**claims, "exp": now + 60}, SECRET, algorithm="HS512")
    assert _reason(token) is Reason.INVALID_TOKEN


@pytest.mark.parametrize("sid", ["signin_xyz", HEX, 42])
def test_malformed_session_id_is_invalid(sid: object) -> None:
    assert _reason(_issue(sid=sid)) is Reason.INVALID_TOKEN


def test_garbage_is_invalid() -> None:
    assert _reason("not-a-jwt") is Reason.INVALID_TOKEN


def test_previous_key_verifies_but_never_signs() -> None:
    now = int(time.time())
    old = TokenService("o" * 40, issuer="amend")
    rotated = TokenService(SECRET, issuer="amend", previous_secrets=("o" * 40,))
    token = old.issue(project_id="p", unique_id=HEX, session_hex=HEX, iat=now, exp=now + 60)
    assert rotated.decode(token).unique_id == HEX
    fresh = rotated.issue(project_id="p", unique_id=HEX, session_hex=HEX, iat=now, exp=now + 60)
    with pytest.raises(AmendError):
        old.decode(fresh)  # signed with the current key, not the previous one
    assert TokenService(SECRET, issuer="amend").decode(fresh).unique_id == HEX


def test_expired_token_signed_with_the_previous_key_is_token_expired() -> None:
    now = int(time.time())
    old = TokenService("o" * 40, issuer="amend")
    rotated = TokenService(SECRET, issuer="amend", previous_secrets=("o" * 40,))
    token = old.issue(project_id="p", unique_id=HEX, session_hex=HEX, iat=now - 90, exp=now - 30)
    with pytest.raises(AmendError) as info:
        rotated.decode(token)
    assert info.value.reason is Reason.TOKEN_EXPIRED


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_remembered_token_is_verified_afresh_once_past_its_expiry() -> None:
    clock = _Clock()
    tokens = TokenService(SECRET, issuer="amend", clock=clock)
    token = _issue(exp=int(clock.now) + 10)
    first = tokens.decode(token)
    assert tokens.decode(token) is first  # from the cache
    clock.now += 11
    # Past `exp` by the service's clock the cache does not answer; PyJWT (on the real clock,
    # where the token is still valid) decides.
    assert tokens.decode(token) is not first


def test_remembered_token_is_verified_again_after_the_cache_lifetime() -> None:
    clock = _Clock()
    tokens = TokenService(SECRET, issuer="amend", clock=clock)
    token = _issue(exp=int(clock.now) + 3600)
    first = tokens.decode(token)
    clock.now += VERIFIED_CACHE_TTL_S + 1
    again = tokens.decode(token)
    assert again == first and again is not first


def test_a_tampered_copy_of_a_remembered_token_is_still_refused() -> None:
    tokens = _service()
    token = _issue()
    tokens.decode(token)
    header, _payload, signature = token.split(".")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "sub": "f" * 32},
        "another-key-entirely-another-key-xx",
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(AmendError) as caught:
        tokens.decode(f"{header}.{forged}.{signature}")
    assert caught.value.reason is Reason.INVALID_TOKEN


def test_the_verified_cache_is_bounded() -> None:
    tokens = _service()
    # One clock reading for every token: read per token, a second boundary between two
    # readings could make a later token identical to the first (a cache hit, not an entry).
    now = int(time.time())
    first = _issue(iat=now - 1, exp=now + 60)
    tokens.decode(first)
    for i in range(VERIFIED_CACHE_SIZE):
        tokens.decode(_issue(iat=now - 2 - i, exp=now + 60))
    assert len(tokens._verified) == VERIFIED_CACHE_SIZE
    assert first not in tokens._verified
