"""What an import does with each valid line: insert, update, skip, or refuse it.

A line conflicts with the users that share its unique_id (ids are unique across endpoints),
its username or its email (both within the endpoint). Duplicates inside the file are found
with an on-disk key set, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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


INSERT = Decision("insert")
_SKIP = Decision("skip")


def _bad(reason: Reason, field: str, message: str) -> Decision:
    return Decision("bad", problems=(Problem(reason, message, (field,)),))


def _taken(kind: str) -> Decision:
    if kind == "username":
        return _bad(Reason.USERNAME_TAKEN, "username", "A user with this username exists.")
    if kind == "email":
        return _bad(Reason.EMAIL_TAKEN, "email", "A user with this email address exists.")
    return _bad(Reason.INVALID_FIELD, "unique_id", "A user with this unique_id exists.")


class Found:
    """The users `transfer.existing` found for a batch, by unique_id and, for the users of
    the endpoint, by username and email key: a line finds its matches in three look-ups."""

    __slots__ = ("by_email", "by_id", "by_username")

    def __init__(self, users: Sequence[User]) -> None:
        self.by_id = {u.unique_id: u for u in users}
        mine = [u for u in users if u.endpoint]  # users of another endpoint come back as ""
        self.by_username = {canonical_username(u.username): u for u in mine}
        self.by_email = {canonical_email(u.email): u for u in mine if u.email is not None}

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def matches(self, line: Line) -> list[tuple[str, User]] | None:
        """The users the line conflicts with and how (in primary-key order, a user once,
        by unique_id first); None when the line's unique_id is another endpoint's."""
        found: dict[int, tuple[str, User]] = {}
        user = self.by_id.get(line.unique_id)
        if user is not None:
            if not user.endpoint:  # another endpoint's user: ids are global
                return None
            found[user.pk] = ("unique_id", user)
        user = self.by_username.get(line.username_key)
        if user is not None:
            found.setdefault(user.pk, ("username", user))
        email_key = line.email_key
        user = None if email_key is None else self.by_email.get(email_key)
        if user is not None:
            found.setdefault(user.pk, ("email", user))
        return [found[pk] for pk in sorted(found)]


def decide(line: Line, found: Found, mode: str) -> Decision:
    """The action for `line`, given the users `transfer.existing` found for its batch."""
    if not found:
        return INSERT
    matches = found.matches(line)
    if matches is None:
        return _bad(
            Reason.INVALID_FIELD, "unique_id", "A user of another endpoint has this unique_id."
        )
    if not matches:
        return INSERT
    if mode == SKIP:
        return _SKIP
    if mode == FAIL:
        return _taken(matches[0][0])
    target = next((u for kind, u in matches if kind == "unique_id"), matches[0][1])
    for kind, user in matches:
        if user.pk != target.pk:
            return _taken(kind)
    if line.given_id and target.unique_id != line.unique_id:
        return _taken(matches[0][0])
    return Decision("update", user=target)


class SeenKeys:
    """The unique_ids, usernames and emails of the lines accepted so far, in a temporary
    SQLite file (a page cache of a few MiB however many lines there are)."""

    _CHUNK = 5000  # bound parameters per look-up, well under SQLite's limit (32766)

    def __init__(self, directory: Path) -> None:
        self._db = sqlite3.connect(directory / "seen.db")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("PRAGMA cache_size = -16384")  # KiB: bounded, whatever the file size
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")

    @staticmethod
    def keys(line: Line) -> list[str]:
        """The line's keys, each marked with its kind (`u:`, `e:`, `i:`)."""
        found = ["u:" + line.username_key]
        if line.email_key is not None:
            found.append("e:" + line.email_key)
        if line.given_id:
            found.append("i:" + line.unique_id)
        return found

    def _known(self, wanted: list[str]) -> set[str]:
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
        keyed = [(line, self.keys(line)) for line in lines]
        known = self._known([key for _, keys in keyed for key in keys])
        refused: dict[int, Decision] = {}
        fresh: list[str] = []
        for line, keys in keyed:
            if known.isdisjoint(keys):
                known.update(keys)
                fresh.extend(keys)
            else:
                clash = next(key for key in keys if key in known)
                refused[line.number] = _duplicate(_KINDS[clash[0]])
        self._db.executemany("INSERT INTO seen VALUES (?)", zip(fresh, strict=True))
        return refused

    def close(self) -> None:
        self._db.close()


_KINDS = {"u": "username", "e": "email", "i": "unique_id"}


def _duplicate(kind: str) -> Decision:
    if kind == "unique_id":
        return _bad(Reason.INVALID_FIELD, "unique_id", "An earlier line has this unique_id.")
    reason = Reason.USERNAME_TAKEN if kind == "username" else Reason.EMAIL_TAKEN
    what = "username" if kind == "username" else "email address"
    return _bad(reason, kind, f"An earlier line has this {what}.")
