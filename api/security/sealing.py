"""Secrets at rest: keyed digests of one-time tokens, and sealed (encrypted) mail bodies.

Both keys are derived from AMEND_SECRET_KEY, each for its own purpose, so neither a table of
digests nor a sealed mail can be turned back into a token without the server's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

TOKEN_BYTES = 32  # 256 bits of randomness


def _derive(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), f"amend:{purpose}".encode(), hashlib.sha256).digest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class Sealer:
    """Digests tokens and seals mail bodies with keys derived from the secret key. A sealed
    body written under the previous key (during a key rotation) still opens."""

    def __init__(self, secret_key: str, previous_secret_keys: tuple[str, ...] = ()) -> None:
        self._digest_key = _derive(secret_key, "token-digest")
        keys = (secret_key, *previous_secret_keys)
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(key, "outbox-seal"))) for key in keys]
        )

    def digest(self, purpose: str, token: str) -> str:
        """Keyed: a leaked table of digests cannot be checked against guesses offline."""
        return hmac.new(self._digest_key, f"{purpose}:{token}".encode(), hashlib.sha256).hexdigest()

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise ValueError("this sealed body was written under another secret key") from None
