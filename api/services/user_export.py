"""`amend users export` (SPEC §10): an endpoint's users as JSON Lines in the import format.

Streams in pages by primary key (each page its own short read), so memory stays bounded and
a running server is not held up. Primary-key order is the order users were created in this
instance (an import inserts in file order), so the newest come last and an export imported
elsewhere keeps its order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson

from api.core.models import User
from api.services.container import Services
from api.services.user_import import find_endpoint
from api.store import transfer

PAGE = 2000


def created_at_iso(ms: int) -> str:
    """ISO 8601 with milliseconds and an offset, which the import reads back exactly."""
    moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
    return moment.isoformat(timespec="milliseconds")


def export_line(user: User) -> bytes:
    doc: dict[str, object] = {"unique_id": user.unique_id, "username": user.username}
    if user.email is not None:
        doc["email"] = user.email
    doc["email_verified"] = user.email_verified
    for name in ("first_name", "last_name", "phone_number", "image_url"):
        value = getattr(user, name)
        if value is not None:
            doc[name] = value
    doc["data"] = user.data
    doc["created_at"] = created_at_iso(user.created_at)
    if user.password_hash:
        doc["password_hash"] = user.password_hash
    return orjson.dumps(doc) + b"\n"


async def export_users(services: Services, *, project: str, endpoint: str) -> AsyncIterator[bytes]:
    """Chunks of JSON Lines, a page of users each."""
    _, ep = await find_endpoint(services, project, endpoint)
    after = 0
    while True:
        async with services.db.read() as tx:
            page = await transfer.export_page(tx, ep.id, ep.name, after=after, limit=PAGE)
        if not page:
            return
        yield b"".join(export_line(user) for user in page)
        after = page[-1].pk
