"""What an import does with each valid line: insert, update, skip, or refuse it.

A line conflicts with the users that share its unique_id (ids are unique across endpoints),
its username or its email (both within the endpoint). Duplicates inside the file are found
with an on-disk key set, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from api.core.errors import Problem, Reason
from api.core.models import User
from api.core.policy import canonical_email, canonical_username
from api.services.import_lines import Line

SKIP, UPDATE, FAIL = "skip", "update", "fail"
CONFLICT_MODES = (SKIP, UPDATE, FAIL)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # "insert", "update", "skip" or "bad"
    user: User | None = None
    problems: tuple[Problem, ...] = ()


def _bad(reason: Reason, field: str, message: str) -> Decision:
    return Decision("bad", problems=(Problem(reason, message, (field,)),))


def _taken(kind: str) -> Decision:
    if kind == "username":
        return _bad(Reason.USERNAME_TAKEN, "username", "A user with this username exists.")
    if kind == "email":
        return _bad(Reason.EMAIL_TAKEN, "email", "A user with this email address exists.")
    return _bad(Reason.INVALID_FIELD, "unique_id", "A user with this unique_id exists.")


def decide(line: Line, found: Sequence[User], mode: str) -> Decision:
    """The action for `line`, given the users `transfer.existing` found for its batch."""
    matches: list[tuple[str, User]] = []
    for user in found:
        if user.unique_id == line.unique_id:
            if not user.endpoint:  # another endpoint's user: ids are global
                return _bad(
                    Reason.INVALID_FIELD,
                    "unique_id",
                    "A user of another endpoint has this unique_id.",
                )
            matches.append(("unique_id", user))
        elif user.endpoint and _same_key(user, line):
            matches.append((_key_kind(user, line), user))
    if not matches:
        return Decision("insert")
    if mode == SKIP:
        return Decision("skip")
    if mode == FAIL:
        return _taken(matches[0][0])
    target = next((u for kind, u in matches if kind == "unique_id"), matches[0][1])
    for kind, user in matches:
        if user.pk != target.pk:
            return _taken(kind)
    if line.given_id and target.unique_id != line.unique_id:
        return _taken(matches[0][0])
    return Decision("update", user=target)


def _key_kind(user: User, line: Line) -> str:
    return "username" if canonical_username(user.username) == line.username_key else "email"


def _same_key(user: User, line: Line) -> bool:
    if canonical_username(user.username) == line.username_key:
        return True
    return (
        line.email_key is not None
        and user.email is not None
        and canonical_email(user.email) == line.email_key
    )


class SeenKeys:
    """The unique_ids, usernames and emails of the lines accepted so far, in a temporary
    SQLite file (a page cache of a few MiB however many lines there are)."""

    _CHUNK = 900  # bound parameters per look-up, well under SQLite's limit

    def __init__(self, directory: Path) -> None:
        self._db = sqlite3.connect(directory / "seen.db")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")

    @staticmethod
    def keys(line: Line) -> list[tuple[str, str]]:
        found = [("username", "u:" + line.username_key)]
        if line.email_key is not None:
            found.append(("email", "e:" + line.email_key))
        if line.given_id:
            found.append(("unique_id", "i:" + line.unique_id))
        return found

    def _known(self, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        known: set[str] = set()
        for start in range(0, len(wanted), self._CHUNK):
            chunk = wanted[start : start + self._CHUNK]
            marks = ",".join("?" * len(chunk))
            with closing(
                self._db.execute(f"SELECT key FROM seen WHERE key IN ({marks})", chunk)  # noqa: S608
            ) as cursor:
                known.update(row[0] for row in cursor)
        return known

    def admit(self, lines: Sequence[Line]) -> dict[int, Decision]:
        """Register the keys of `lines` (in order); a line whose key an earlier line holds is
        refused (returned by its number) and registers nothing."""
        known = self._known(key for line in lines for _, key in self.keys(line))
        refused: dict[int, Decision] = {}
        fresh: list[tuple[str]] = []
        for line in lines:
            keys = self.keys(line)
            clash = next((kind for kind, key in keys if key in known), None)
            if clash is not None:
                refused[line.number] = _duplicate(clash)
                continue
            for _, key in keys:
                known.add(key)
                fresh.append((key,))
        self._db.executemany("INSERT INTO seen VALUES (?)", fresh)
        return refused

    def close(self) -> None:
        self._db.close()


def _duplicate(kind: str) -> Decision:
    if kind == "unique_id":
        return _bad(Reason.INVALID_FIELD, "unique_id", "An earlier line has this unique_id.")
    reason = Reason.USERNAME_TAKEN if kind == "username" else Reason.EMAIL_TAKEN
    what = "username" if kind == "username" else "email address"
    return _bad(reason, kind, f"An earlier line has this {what}.")
