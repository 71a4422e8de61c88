"""`amend users export` (SPEC §10): an endpoint's users as JSON Lines in the import format.

Streams in pages by primary key (each page its own short read), so memory stays bounded and
a running server is not held up. Primary-key order is the order users were created in this
instance (an import inserts in file order), so the newest come last and an export imported
elsewhere keeps its order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from api.services.container import Services
from api.services.user_import import find_endpoint
from api.store import transfer

PAGE = 2000


def created_at_iso(ms: int) -> str:
    """ISO 8601 with milliseconds and an offset, which the import reads back exactly."""
    moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
    return moment.isoformat(timespec="milliseconds")


_OPTIONAL = ("first_name", "last_name", "phone_number", "image_url")


def export_line(row: Mapping[str, Any]) -> bytes:
    """One user in the import format (keys in the documented order; absent when empty)."""
    doc: dict[str, object] = {"unique_id": row["unique_id"], "username": row["username"]}
    if row["email"] is not None:
        doc["email"] = row["email"]
    doc["email_verified"] = bool(row["email_verified"])
    for name in _OPTIONAL:
        if row[name] is not None:
            doc[name] = row[name]
    doc["data"] = row["data"] or {}
    doc["created_at"] = created_at_iso(row["created_at"])
    if row["password_hash"]:
        doc["password_hash"] = row["password_hash"]
    return orjson.dumps(doc) + b"\n"


async def export_users(services: Services, *, project: str, endpoint: str) -> AsyncIterator[bytes]:
    """Chunks of JSON Lines, a page of users each."""
    _, ep = await find_endpoint(services, project, endpoint)
    after = 0
    while True:
        async with services.db.read() as tx:
            page = await transfer.export_page(tx, ep.id, after=after, limit=PAGE)
        if not page:
            return
        yield b"".join(export_line(row) for row in page)
        after = page[-1]["pk"]
