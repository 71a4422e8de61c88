"""One batch of an import, inside one write transaction: inserts, updates, audit events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from api.core.clock import now_ms
from api.core.errors import Problem
from api.core.models import Actor, Endpoint, Project, User
from api.services.container import Services
from api.services.import_lines import SECRET_FIELDS, Line
from api.services.import_plan import Decision, Found, decide
from api.store import Tx, audit, sessions, transfer, users

# Line fields an update may replace, and the columns each one sets.
_UPDATABLE = {
    "username": ("username", "username_canonical"),
    "email": ("email", "email_canonical"),
    "email_verified": ("email_verified",),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "phone_number": ("phone_number",),
    "image_url": ("image_url",),
    "data": ("data",),
    "created_at": ("created_at",),
    "password": ("password_hash",),
    "password_hash": ("password_hash",),
}


@dataclass(slots=True)
class Counts:
    imported: int = 0
    updated: int = 0
    skipped: int = 0


def audit_fields(line: Line) -> list[str]:
    """Field names for the audit event: a password or a hash is named `password`."""
    return sorted({"password" if f in SECRET_FIELDS else f for f in line.fields})


def new_row(line: Line, endpoint_id: int, now: int | None) -> dict[str, Any]:
    """The columns of an imported user; `now` None leaves the time stamps to fill in."""
    return dict(zip(transfer.IMPORT_COLUMNS, new_values(line, endpoint_id, now), strict=True))


def new_values(line: Line, endpoint_id: int, now: int | None) -> tuple[Any, ...]:
    """`new_row`'s values, in `transfer.IMPORT_COLUMNS` order."""
    v = line.values
    created = v.get("created_at")
    return (
        endpoint_id,
        line.unique_id,
        v["username"],
        v["username_canonical"],
        v.get("email"),
        v.get("email_canonical"),
        # Without a password or a hash the account cannot sign in (no hash verifies "").
        v.get("password_hash") or "",
        v.get("first_name"),
        v.get("last_name"),
        v.get("phone_number"),
        v.get("image_url"),
        bool(v.get("email_verified", False)),
        v.get("data") or {},
        1,  # version
        now if created is None else created,
        now,  # updated_at
    )


def changes_for(line: Line, user: User) -> dict[str, Any]:
    """The columns the line changes on `user` (only those that differ)."""
    changes: dict[str, Any] = {}
    for name in line.fields:
        for column in _UPDATABLE.get(name, ()):
            value = line.values.get(column)
            if column == "data":
                value = value or {}
            if getattr(user, column, None) != value:
                changes[column] = value
    # The canonical columns are not on `User`: keep them only with the field they follow.
    if "username" not in changes:
        changes.pop("username_canonical", None)
    if "email" not in changes:
        changes.pop("email_canonical", None)
    return changes


async def write_batch(
    services: Services,
    tx: Tx,
    project: Project,
    ep: Endpoint,
    decisions: Sequence[tuple[Line, Decision]],
    now: int,
) -> Counts:
    counts = Counts()
    inserts = [line for line, d in decisions if d.action == "insert"]
    if inserts:
        await transfer.insert_users(tx, [new_row(line, ep.id, now) for line in inserts])
        # Lines of one file mostly set the same fields: their audit list is made once.
        named: dict[tuple[str, ...], list[str]] = {}
        events = []
        for line in inserts:
            key = tuple(line.fields)
            fields = named.get(key)
            if fields is None:
                fields = named[key] = audit_fields(line)
            events.append((line.unique_id, fields))
        await transfer.record_imports(
            tx, services.db.dialect, project_id=project.id, events=events, now=now
        )
        counts.imported = len(inserts)
    for line, decision in decisions:
        if decision.action == "skip":
            counts.skipped += 1
        elif decision.action == "update" and decision.user is not None:
            if await _update(services, tx, project, line, decision.user, now):
                counts.updated += 1
            else:
                counts.skipped += 1
    return counts


async def _update(
    services: Services, tx: Tx, project: Project, line: Line, user: User, now: int
) -> bool:
    changes = changes_for(line, user)
    if not changes:
        return False  # the same values: a re-run changes nothing
    updated = await users.update_versioned(tx, user, changes)
    if updated is None:
        return False  # changed by someone else since the look-up in this transaction
    if "password_hash" in changes:
        # A new hash is a new credential: sessions made with the old one end.
        await sessions.revoke_all(tx, user_pk=user.pk, now=now)
    await services.events.changed(tx, user.pk)
    fields = sorted(
        {"password" if c == "password_hash" else c for c in changes}
        - {"username_canonical", "email_canonical"}
    )
    await audit.record(
        tx,
        project_id=project.id,
        user_pk=user.pk,
        action="import",
        fields=fields,
        strategy=None,
        actor=Actor.MASTER,
        ip=None,
        now=now,
    )
    return True


def binder(services: Services, ep: Endpoint) -> Callable[[Line], list[Any]]:
    """A line's insert, bound for this database ahead of the write (time stamps left out)."""
    bind, _, _ = transfer.user_binder(services.db.dialect)
    return lambda line: bind(new_values(line, ep.id, None))


def spooled(line: Line, insert: bool, fields: list[str] | None = None) -> bytes:
    """A line in the spool: a head, a tab, then the line. The head, for a line planned as an
    insert with its bound row, holds what writing it takes (unique_id, the audit event's field
    names, `fields` if given, the row), so the second pass reads only that much of it; else it
    is null. Made ahead (`line.record`) for a line expected to be an insert."""
    if line.record is not None:
        return line.record if insert else b"null\t" + line.record.partition(b"\t")[2]
    head = None
    if insert and line.row is not None:
        head = [line.unique_id, fields or audit_fields(line), line.row]
    body = [line.number, line.unique_id, line.given_id, line.fields, line.values]
    return orjson.dumps(head) + b"\t" + orjson.dumps(body) + b"\n"


def unspooled(raw: bytes) -> Line:
    number, unique_id, given_id, fields, values = orjson.loads(raw.partition(b"\t")[2])
    return Line(number, unique_id, values, fields, None, given_id)


# Lines per transaction the careful way: an update costs ~100 µs (the row, the user's change
# event, an audit event, maybe its sessions), so 200 of them hold the write lock ~20-40 ms.
CAREFUL_BATCH = 200


class _Conflicted(Exception):
    """A bound insert met a user made since the first pass."""


class Writer:
    """The second pass, a batch of spooled lines per write transaction. A batch planned as
    inserts only is inserted as bound, without looking for conflicts again: the unique
    constraints are the look-up, and if one refuses a row (a user made meanwhile), the batch
    is rolled back and written the careful way (look-up, then decide line by line)."""

    def __init__(self, services: Services, project: Project, ep: Endpoint, mode: str) -> None:
        self.services, self.project, self.ep, self.mode = services, project, ep, mode
        _, self._created, self._updated = transfer.user_binder(services.db.dialect)
        self.refused: list[tuple[int, tuple[Problem, ...]]] = []  # bad lines met on the way

    async def batch(self, raws: list[bytes]) -> Counts:
        heads = [orjson.loads(raw.partition(b"\t")[0]) for raw in raws]
        if all(head is not None for head in heads):
            try:
                return await self._insert(heads)
            except _Conflicted:
                pass
        lines = [unspooled(raw) for raw in raws]
        counts = Counts()
        for start in range(0, len(lines), CAREFUL_BATCH):
            done = await self._careful(lines[start : start + CAREFUL_BATCH])
            counts.imported += done.imported
            counts.updated += done.updated
            counts.skipped += done.skipped
        return counts

    async def _insert(self, heads: list[list[Any]]) -> Counts:
        now = now_ms()
        created, updated = self._created, self._updated
        for _, _, row in heads:
            row[updated] = now
            if row[created] is None:
                row[created] = now
        async with self.services.db.write() as tx:
            if not await transfer.insert_bound_users(tx, [row for _, _, row in heads]):
                raise _Conflicted
            events = [(unique_id, fields) for unique_id, fields, _ in heads]
            await transfer.record_imports(
                tx, self.services.db.dialect, project_id=self.project.id, events=events, now=now
            )
        return Counts(imported=len(heads))

    async def _careful(self, lines: list[Line]) -> Counts:
        keys = [(line.unique_id, line.username_key, line.email_key) for line in lines]
        async with self.services.db.write() as tx:
            found = Found(await transfer.existing(tx, self.ep.id, self.ep.name, keys))
            decisions = [(line, decide(line, found, self.mode)) for line in lines]
            counts = await write_batch(
                self.services, tx, self.project, self.ep, decisions, now_ms()
            )
        for line, decision in decisions:
            if decision.action == "bad":  # appeared since the first pass
                self.refused.append((line.number, decision.problems))
        return counts
