"""Reading queued mail in tests: a body that holds a token or code is sealed in the outbox;
the tests open it with the key the test settings use, as the delivery does."""

from __future__ import annotations

import re

from api.security.sealing import Sealer
from tests.conftest import SECRET
from tests.db import TestDB

SEALER = Sealer(SECRET)


def opened(body: str, sealed: object) -> str:
    return SEALER.open(body) if sealed else body


def queued(db: TestDB, *, kind: str | None = None, to: str | None = None) -> list[str]:
    """The opened bodies of queued mails (newest first), optionally of one kind / address."""
    rows = db.sql('SELECT kind, "to", body, sealed FROM outbox ORDER BY id DESC')
    return [
        opened(body, sealed)
        for k, t, body, sealed in rows
        if (kind is None or k == kind) and (to is None or t == to)
    ]


def token_in(body: str) -> str:
    """The one-time token a recovery mail carries (after `token=` in a link, or bare)."""
    match = re.search(r"token=([A-Za-z0-9_-]{40,})", body) or re.search(
        r"\b([A-Za-z0-9_-]{43})\b", body
    )
    assert match, body
    return match.group(1)
