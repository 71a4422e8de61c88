"""`amend users import` (SPEC §10): JSON Lines in, users with their password hashes out.

Two passes, so a file with a bad line imports nothing (the default) while memory stays
bounded: the first reads the input once (a file or stdin) in batches, validates every line
(mostly in a worker process: `import_check`), finds duplicates inside the file (an on-disk key
set) and conflicts with stored users, hashes the plain-text passwords, and writes the valid
lines, normalized and hashed, to a private temporary spool file (plain passwords never reach
the disk). The second, only when there is something to write, reads the spool in batches of
`BATCH` lines, each in one short write transaction (`import_write.Writer`: bound inserts, or
conflicts looked up again inside it), so a server on the same SQLite database waits
milliseconds for the lock, never the whole import.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from api.core.clock import now_ms
from api.core.errors import AmendError, Problem, Reason
from api.core.models import Endpoint, Project
from api.services.container import Services
from api.services.import_check import Bind, Raw, checked_batches
from api.services.import_lines import Line
from api.services.import_plan import Found, SeenKeys, decide
from api.services.import_write import Counts, Writer, binder, changes_for
from api.services.import_write import spooled as spooled_line
from api.store import Tx, projects, transfer

# Lines per step: per batch of the first pass, and per write transaction of the second, where
# 1,000 lines hold the SQLite write lock for ~15-30 ms.
BATCH = 1000
BATCH_BYTES = 4 << 20  # and at most this much input per batch: memory stays bounded
MAX_LINE_BYTES = 1 << 20  # custom data is at most 64 KiB; a longer line is refused unread
Progress = Callable[[int], None]  # called with the number of lines just handled


@dataclass(frozen=True, slots=True)
class Invalid:
    line: int
    field: str | None
    reason: str
    message: str

    def text(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"line {self.line}: {where}{self.reason}: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    written: bool = False  # False: nothing was written (a dry run, or refused bad lines)

    def as_json(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "skipped": self.skipped,
            "invalid": [i.as_json() for i in self.invalid],
        }

    def refuse(self, number: int, problems: tuple[Problem, ...] | list[Problem]) -> None:
        for p in problems:
            where = ".".join(p.field) if p.field else None
            self.invalid.append(Invalid(number, where, p.reason.value, p.message))


@dataclass(frozen=True, slots=True)
class ImportOptions:
    on_conflict: str = "skip"
    skip_invalid: bool = False
    dry_run: bool = False


async def find_endpoint(
    services: Services, project: str, endpoint: str
) -> tuple[Project, Endpoint]:
    async with services.db.read() as tx:
        found = await projects.by_id(tx, project) or await projects.by_name(tx, project)
        if found is None:
            raise AmendError(Reason.INVALID_API_KEY, f"no project {project!r}")
        ep = await projects.endpoint(tx, found.id, endpoint)
    if ep is None:
        raise AmendError(Reason.INVALID_ENDPOINT, f"no endpoint {endpoint!r} in {found.name!r}")
    return found, ep


def read_lines(source: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each non-blank line; None for a line over the size limit."""
    number = 0
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte order mark, as some Windows tools write
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield number, None
        elif raw.strip():
            yield number, raw


def _batches(source: IO[bytes]) -> Iterator[Raw]:
    """Lines in batches of `BATCH`, or fewer when they reach `BATCH_BYTES`."""
    batch: list[tuple[int, bytes | None]] = []
    size = 0
    for item in read_lines(source):
        batch.append(item)
        size += len(item[1] or b"")
        if len(batch) >= BATCH or size >= BATCH_BYTES:
            yield batch, now_ms()
            batch, size = [], 0
    if batch:
        yield batch, now_ms()


async def _lookup(tx: Tx, ep: Endpoint, lines: list[Line]) -> Found:
    keys = [(line.unique_id, line.username_key, line.email_key) for line in lines]
    return Found(await transfer.existing(tx, ep.id, ep.name, keys))


class _Importer:
    def __init__(
        self, services: Services, project: Project, ep: Endpoint, options: ImportOptions
    ) -> None:
        self.services, self.project, self.ep, self.options = services, project, ep, options
        self.report = ImportReport()
        self.empty = False  # whether the endpoint had no users when the import began

    def _hashing(self) -> bool:
        """Whether plain passwords are worth hashing: not when nothing will be written."""
        return not self.options.dry_run and (self.options.skip_invalid or not self.report.invalid)

    async def check(
        self, source: IO[bytes], seen: SeenKeys, spool: IO[bytes], progress: Progress | None
    ) -> int:
        """The first pass; returns the number of lines spooled for writing."""
        spooled = 0
        identify, bind = self.services.hasher.identify, binder(self.services, self.ep)
        async with self.services.db.read() as tx:
            # An endpoint without users (a migration's usual target) has no conflicts to look
            # up; one made meanwhile by a server is met by the second pass.
            self.empty = not await transfer.has_users(tx, self.ep.id)
        async for count, (good, bad) in checked_batches(_batches(source), identify, bind):
            for number, problems in bad:
                self.report.refuse(number, problems)
            refused = seen.admit(good)
            if refused:
                good = [line for line in good if line.number not in refused]
                for number, decision in refused.items():
                    self.report.refuse(number, decision.problems)
            keep = await self._planned(good)
            if self._hashing():
                await self._hash_plain([line for line, _ in keep], bind)
                spool.write(b"".join(spooled_line(line, insert) for line, insert in keep))
                spooled += len(keep)
            if progress is not None:
                progress(count)
        self.report.invalid.sort(key=lambda i: i.line)
        return spooled

    async def _planned(self, lines: list[Line]) -> list[tuple[Line, bool]]:
        """The lines to write (counted as imports or updates), each with whether it is an
        insert; conflicts are counted as skipped or reported as bad lines."""
        # In an empty endpoint only a unique_id the line gives can be taken (in another one).
        lines_to_look_up = [line for line in lines if line.given_id] if self.empty else lines
        found = Found(())
        if lines_to_look_up:
            async with self.services.db.read() as tx:
                found = await _lookup(tx, self.ep, lines_to_look_up)
        keep: list[tuple[Line, bool]] = []
        for line in lines:
            decision = decide(line, found, self.options.on_conflict)
            if decision.action == "insert":
                keep.append((line, True))
                self.report.imported += 1
            elif decision.action == "bad":
                self.report.refuse(line.number, decision.problems)
            elif decision.action == "skip" or (
                decision.user is not None and not changes_for(line, decision.user)
            ):
                self.report.skipped += 1  # a conflict, or an update with nothing new
            else:
                keep.append((line, False))
                self.report.updated += 1
        return keep

    async def _hash_plain(self, lines: list[Line], bind: Bind) -> None:
        plain = [line for line in lines if line.password is not None]
        if not plain:
            return
        hashes = await asyncio.gather(
            *(self.services.hasher.hash(str(line.password)) for line in plain)
        )
        for line, hashed in zip(plain, hashes, strict=True):
            line.values["password_hash"] = hashed
            line.password = None
            line.row = bind(line)

    async def write(self, spool: IO[bytes], progress: Progress | None) -> None:
        """The second pass: the spooled lines, a batch per write transaction."""
        transfer.warm(self.services.db.dialect)
        writer = Writer(self.services, self.project, self.ep, self.options.on_conflict)
        self.report.imported = self.report.updated = 0
        batch: list[bytes] = []
        for raw in spool:
            batch.append(raw)
            if len(batch) >= BATCH:
                self._count(await writer.batch(batch), len(batch), progress)
                batch = []
        if batch:
            self._count(await writer.batch(batch), len(batch), progress)
        for number, problems in writer.refused:
            self.report.refuse(number, problems)
        self.report.invalid.sort(key=lambda i: i.line)
        self.report.written = True

    def _count(self, counts: Counts, lines: int, progress: Progress | None) -> None:
        self.report.imported += counts.imported
        self.report.updated += counts.updated
        self.report.skipped += counts.skipped
        if progress is not None:
            progress(lines)


@contextlib.contextmanager
def _collector_for_batches() -> Iterator[None]:
    """The cyclic garbage collector, tuned while an import runs. A batch holds tens of
    thousands of containers (parsed lines) alive, on which the default thresholds start a
    collection every 700 allocations, and every tenth of those also walks the whole heap of
    a started process (SQLAlchemy, the schema, ...): ~20% of an import. The objects alive
    before the import are set aside (`gc.freeze`) and collections come 50x less often;
    cycles are still collected, so memory stays bounded. Restored afterwards."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(35_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def import_users(
    services: Services,
    *,
    project: str,
    endpoint: str,
    source: IO[bytes],
    options: ImportOptions,
    checking: Progress | None = None,
    writing: Callable[[int], Progress | None] | None = None,
) -> ImportReport:
    """Import a JSON Lines stream. `checking` follows the first pass; `writing(total)` gives
    the progress callback of the second, once its number of lines is known."""
    found_project, ep = await find_endpoint(services, project, endpoint)
    importer = _Importer(services, found_project, ep, options)
    with _collector_for_batches(), tempfile.TemporaryDirectory(prefix="amend-import-") as tmp:
        seen = SeenKeys(Path(tmp))
        try:
            with tempfile.TemporaryFile(dir=tmp) as spool:
                total = await importer.check(source, seen, spool, checking)
                report = importer.report
                if options.dry_run or (report.invalid and not options.skip_invalid):
                    if report.invalid and not options.skip_invalid:
                        report.imported = report.updated = report.skipped = 0
                    return report
                spool.seek(0)
                progress = writing(total) if writing is not None else None
                await importer.write(spool, progress)
        finally:
            seen.close()
    return importer.report
