"""Helpers for the import and export tests: hashes in every accepted format, runs of the
import service over in-memory files, and looks at the stored rows."""

from __future__ import annotations

import io
import json
from typing import Any

from passlib import hash as ph

from api.services.container import Services
from api.services.user_import import ImportOptions, ImportReport, import_users
from tests.db import TestDB

PASSWORD = "Moved1n!x"

# One hash per accepted format, made by passlib at low cost (the formats' own minimums).
FORMATS: dict[str, Any] = {
    "argon2id": lambda p: ph.argon2.using(type="ID", memory_cost=64, rounds=1).hash(p),
    "argon2i": lambda p: ph.argon2.using(type="I", memory_cost=64, rounds=1).hash(p),
    "bcrypt_2b": lambda p: ph.bcrypt.using(rounds=4).hash(p),
    "bcrypt_2a": lambda p: ph.bcrypt.using(rounds=4, ident="2a").hash(p),
    "bcrypt_2y": lambda p: ph.bcrypt.using(rounds=4, ident="2y").hash(p),
    "bcrypt_sha256": lambda p: ph.bcrypt_sha256.using(rounds=4).hash(p),
    "scrypt": lambda p: ph.scrypt.using(rounds=4).hash(p),
    "pbkdf2_sha256": lambda p: ph.pbkdf2_sha256.using(rounds=1000).hash(p),
    "pbkdf2_sha512": lambda p: ph.pbkdf2_sha512.using(rounds=1000).hash(p),
    "django_pbkdf2_sha256": lambda p: ph.django_pbkdf2_sha256.using(rounds=1000).hash(p),
    "sha512_crypt": lambda p: ph.sha512_crypt.using(rounds=1000).hash(p),
    "sha256_crypt": lambda p: ph.sha256_crypt.using(rounds=1000).hash(p),
    "md5_crypt": lambda p: ph.md5_crypt.hash(p),
    "phpass_P": lambda p: ph.phpass.using(rounds=7).hash(p),
    "phpass_H": lambda p: ph.phpass.using(rounds=7, ident="H").hash(p),
    "ssha": lambda p: ph.ldap_salted_sha1.hash(p),
}


def jsonl(*docs: Any) -> bytes:
    return b"".join((d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\n" for d in docs)


async def run_import(
    services: Services, data: bytes, *, project: str = "acme", **options: Any
) -> ImportReport:
    return await import_users(
        services,
        project=project,
        endpoint=options.pop("endpoint", "users"),
        source=io.BytesIO(data),
        options=ImportOptions(**options),
    )


def stored(db: TestDB, username: str) -> dict[str, Any]:
    rows = db.sql(
        "SELECT unique_id, password_hash, version, email, pk FROM users WHERE username = ?",
        (username,),
    )
    assert len(rows) == 1, rows
    uid, password_hash, version, email, pk = rows[0]
    return {"unique_id": uid, "hash": password_hash, "version": version, "email": email, "pk": pk}


def user_count(db: TestDB) -> int:
    return int(db.sql("SELECT COUNT(*) FROM users")[0][0])


def problems(report: ImportReport) -> list[tuple[int, str | None, str]]:
    return [(i.line, i.field, i.reason) for i in report.invalid]
