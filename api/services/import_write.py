"""One batch of an import, inside one write transaction: inserts, updates, audit events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.core.models import Actor, Endpoint, Project, User
from api.services.container import Services
from api.services.import_lines import SECRET_FIELDS, Line
from api.services.import_plan import Decision
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


def new_row(line: Line, endpoint_id: int, now: int) -> dict[str, Any]:
    v = line.values
    created = v.get("created_at")
    return {
        "endpoint_id": endpoint_id,
        "unique_id": line.unique_id,
        "username": v["username"],
        "username_canonical": v["username_canonical"],
        "email": v.get("email"),
        "email_canonical": v.get("email_canonical"),
        # Without a password or a hash the account cannot sign in (no hash verifies "").
        "password_hash": v.get("password_hash") or "",
        "first_name": v.get("first_name"),
        "last_name": v.get("last_name"),
        "phone_number": v.get("phone_number"),
        "image_url": v.get("image_url"),
        "email_verified": bool(v.get("email_verified", False)),
        "data": v.get("data") or {},
        "version": 1,
        "created_at": now if created is None else created,
        "updated_at": now,
    }


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
    pks = await transfer.insert_users(tx, [new_row(line, ep.id, now) for line in inserts])
    counts.imported = len(inserts)
    events = [(pks[line.unique_id], audit_fields(line)) for line in inserts]
    await transfer.record_imports(tx, project_id=project.id, events=events, now=now)
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
