"""The commands that move data in bulk: `users import`, `users export`, `db copy`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING, TypeVar

from api.config import Settings
from api.core.errors import AmendError, Reason
from api.services.container import Services
from api.services.user_export import export_users
from api.services.user_import import ImportOptions, ImportReport, import_users
from api.store import Database, migrate
from api.store import copy as store_copy

if TYPE_CHECKING:
    from rich.progress import Progress

T = TypeVar("T")
Advance = Callable[[int], None]


async def _with_services(settings: Settings, fn: Callable[[Services], Awaitable[T]]) -> T:
    services = Services.build(settings)
    try:
        await migrate.upgrade(services.db)
        return await fn(services)
    finally:
        await services.close()


def call(settings: Settings, fn: Callable[[Services], Awaitable[T]]) -> T:
    """Run `fn` with the services of a migrated database, then close them."""
    return asyncio.run(_with_services(settings, fn))


@contextlib.contextmanager
def _progress() -> Iterator[Progress | None]:
    """Progress bars on stderr when it is a terminal; None otherwise (no output at all)."""
    if not sys.stderr.isatty():
        yield None
        return
    # Imported here: the other commands (`serve` above all) start without it.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
    ) as progress:
        yield progress


def _bar(progress: Progress | None, desc: str, total: int | None) -> Advance | None:
    if progress is None:
        return None
    task = progress.add_task(desc, total=total)
    return lambda n: progress.advance(task, n)


def import_from(settings: Settings, args: argparse.Namespace) -> bool:
    """Run `users import`; False when bad lines stopped it (exit 1)."""
    with _progress() as progress:
        report = call(settings, lambda s: _import(s, args, progress))
    _print_import(report, args)
    return not (report.invalid and not args.skip_invalid)


async def _import(
    services: Services, args: argparse.Namespace, progress: Progress | None
) -> ImportReport:
    options = ImportOptions(
        on_conflict=args.on_conflict, skip_invalid=args.skip_invalid, dry_run=args.dry_run
    )
    with contextlib.ExitStack() as stack:
        if args.file == "-":
            source: IO[bytes] = sys.stdin.buffer
        else:
            try:
                # A CLI loop serves nothing else: reading the file in it blocks no one.
                source = stack.enter_context(open(args.file, "rb"))  # noqa: ASYNC230
            except OSError as error:
                raise AmendError(
                    Reason.INVALID_FIELD, f"cannot read {args.file}: {error}"
                ) from None
        return await import_users(
            services,
            project=args.project,
            endpoint=args.endpoint,
            source=source,
            options=options,
            checking=_bar(progress, "checking", None),
            writing=lambda total: _bar(progress, "writing", total),
        )


def _print_import(report: ImportReport, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(report.as_json()))
        return
    for problem in report.invalid:
        print(problem.text(), file=sys.stderr)
    if args.dry_run:
        head = "dry run, nothing written: would import"
    elif report.invalid and not args.skip_invalid:
        head = "bad lines, nothing written (fix them or use --skip-invalid): imported"
    else:
        head = "imported"
    print(
        f"{head} {report.imported}, updated {report.updated}, skipped {report.skipped}, "
        f"invalid lines {len({i.line for i in report.invalid})}"
    )


def export_to(settings: Settings, args: argparse.Namespace) -> None:
    call(settings, lambda s: _export(s, args))


async def _export(services: Services, args: argparse.Namespace) -> None:
    chunks = export_users(services, project=args.project, endpoint=args.endpoint)
    if args.output is None:
        async for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    # Created 0600 (and narrowed if it existed): the file holds every password hash.
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as out:
        async for chunk in chunks:
            out.write(chunk)


async def _copy(settings: Settings, url: str, progress: Progress | None) -> dict[str, int]:
    source, target = Database(settings.database_url), Database(url)
    advances: list[Advance | None] = [None]

    def table(name: str, total: int) -> None:
        advances[0] = _bar(progress, name, total)

    def advance(rows: int) -> None:
        if (current := advances[0]) is not None:
            current(rows)

    try:
        return await store_copy.copy_database(
            source, target, store_copy.Progress(table=table, advance=advance)
        )
    finally:
        await source.dispose()
        await target.dispose()


def copy_to(settings: Settings, url: str) -> None:
    if not url.startswith(("sqlite", "postgresql")):
        sys.exit("amend: --to must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
    if url == settings.database_url:
        sys.exit("amend: --to names the configured database itself")
    try:
        with _progress() as progress:
            copied = asyncio.run(_copy(settings, url, progress))
    except store_copy.TargetNotEmpty as error:
        sys.exit(f"amend: {error}")
    width = max(len(name) for name in copied)
    for name, rows in copied.items():
        print(f"{name:<{width}}  {rows} rows")
    print(f"copied {sum(copied.values())} rows into the target database")
