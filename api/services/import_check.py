"""Checking the lines of an import, batch by batch: here, or in a worker process beside it.

Checking a line (JSON, the field rules, the hash format) and preparing its insert is CPU work
that needs nothing of this process but the hash formats and the database's dialect, while the
first pass here also probes the database for duplicates and conflicts. With a second CPU, the
batches after the first are checked in one worker process (but every `HERE_EVERY`th, checked
here), up to `AHEAD` batches ahead of the one this process plans, so a large import takes about
the time of the slower of the two instead of their sum. The worker is forked: it starts in
milliseconds, inherits what it needs, and touches nothing else it inherits (no database
connection, no thread). A batch travels to it as raw bytes and comes back as tuples (keys and
the spool record) and problems; plain passwords go through a pipe, never to disk. If the worker
dies, the batches it held and those after them are checked here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from api.core import ids
from api.core.errors import Problem, Reason
from api.security.passwords import usable_cpus
from api.services.import_lines import Line, check_line
from api.services.import_write import audit_fields, spooled

# A batch: its lines (number, bytes; None: over the size limit) and when it was read (in ms,
# for the ids it generates: batches are checked out of order, their ids sort in order).
Raw = tuple[list[tuple[int, bytes | None]], int]
Checked = tuple[list[Line], list[tuple[int, list[Problem]]]]  # valid lines, bad lines
Identify = Callable[[str], str | None]
Bind = Callable[[Line], list[Any]]  # a line's insert, bound for the database

_TOO_LONG = (Problem(Reason.INVALID_FIELD, "The line is longer than 1 MiB."),)
AHEAD = 2  # batches checked ahead of the one being planned: bounded memory
# Every so many batches is checked here rather than in the worker: the worker's share of a line
# (~19 µs) is more than this process's (~13 µs), so this evens the two out on two free cores.
HERE_EVERY = 5


def check_batch(batch: Raw, identify: Identify, bind: Bind) -> Checked:
    """Check a batch. A valid line gets its unique_id (when it gives none) and, unless it
    holds a plain password (hashed later), its bound insert and its spool record as an
    insert: most lines of most imports are inserts, and this work can run in the worker."""
    good: list[Line] = []
    bad: list[tuple[int, list[Problem]]] = []
    lines, read_at = batch
    for number, raw in lines:
        checked = list(_TOO_LONG) if raw is None else check_line(number, raw, identify)
        if isinstance(checked, Line):
            good.append(checked)
        else:
            bad.append((number, checked))
    # Generated ids sort by time: the import appends to the unique_id index.
    unnamed = [line for line in good if not line.given_id]
    made = ids.new_sorted_hex_ids(len(unnamed), read_at)
    for line, unique_id in zip(unnamed, made, strict=True):
        line.unique_id = unique_id
    named: dict[tuple[str, ...], list[str]] = {}  # lines of a file mostly set the same fields
    for line in good:
        if line.password is None:
            line.row = bind(line)
            fields = named.get(key := tuple(line.fields))
            if fields is None:
                fields = named[key] = audit_fields(line)
            line.record = spooled(line, True, fields)
    return good, bad


_tools: tuple[Identify, Bind] | None = None  # the worker's, set when it starts


def _start_worker(identify: Identify, bind: Bind) -> None:
    global _tools
    _tools = (identify, bind)


Sent = tuple[Any, ...]  # a valid line as the worker sends it back


def _check_in_worker(batch: Raw) -> tuple[list[Sent], list[tuple[int, list[Problem]]]]:
    """`check_batch` in the worker. Lines travel back as tuples of strings and bytes (the
    spool record), which pickle writes and reads several times faster than `Line`s."""
    assert _tools is not None
    good, bad = check_batch(batch, *_tools)
    return [_sent(line) for line in good], bad


def _sent(line: Line) -> Sent:
    if line.record is not None:
        keys = (line.username_key, line.email_key)
        return (line.number, line.unique_id, line.given_id, *keys, line.record)
    return (line.number, line.unique_id, line.given_id, line.values, line.fields, line.password)


def _received(sent: Sent) -> Line:
    number, unique_id, given_id, first, second, last = sent
    if isinstance(last, bytes):  # keys and the record
        return Line.recorded(number, unique_id, given_id, first, second, last)
    return Line(number, unique_id, first, second, last, given_id)  # values, fields, password


def _from_worker(answer: tuple[list[Sent], list[tuple[int, list[Problem]]]]) -> Checked:
    sent, bad = answer
    return [_received(line) for line in sent], bad


def _worker_pool(identify: Identify, bind: Bind) -> ProcessPoolExecutor | None:
    """A one-process pool, or None where a worker would not help (one CPU) or cannot be
    forked (no `fork` on this platform)."""
    if usable_cpus() < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(identify, bind),
    )


async def checked_batches(
    batches: Iterator[Raw], identify: Identify, bind: Bind
) -> AsyncIterator[tuple[int, Checked]]:
    """(lines in the batch, its check) for each batch, in order. The first batch is checked
    here (a small import never starts a worker); the others in the worker when there is one."""
    first = next(batches, None)
    if first is None:
        return
    yield len(first[0]), check_batch(first, identify, bind)
    second = next(batches, None)
    if second is None:
        return
    pool = _worker_pool(identify, bind)
    if pool is None:
        yield len(second[0]), check_batch(second, identify, bind)
        for batch in batches:
            yield len(batch[0]), check_batch(batch, identify, bind)
        return
    loop = asyncio.get_running_loop()
    # (batch, the worker's answer to come; None: checked here when its turn comes)
    pending: deque[tuple[Raw, asyncio.Future[Any] | None]] = deque()
    broken = False  # the worker died (killed, out of memory): the rest is checked here
    try:
        for n, batch in enumerate(_chain(second, batches)):
            here = broken or n % HERE_EVERY == HERE_EVERY - 1
            pending.append((batch, None if here else _submit(pool, loop, batch)))
            if len(pending) > AHEAD:
                raw, done = pending.popleft()
                checked, broken = await _answer(raw, done, identify, bind, broken)
                yield len(raw[0]), checked
        while pending:
            raw, done = pending.popleft()
            checked, broken = await _answer(raw, done, identify, bind, broken)
            yield len(raw[0]), checked
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(
    pool: ProcessPoolExecutor, loop: asyncio.AbstractEventLoop, batch: Raw
) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = loop.create_future()
    try:
        return asyncio.wrap_future(pool.submit(_check_in_worker, batch), loop=loop)
    except BrokenProcessPool as error:
        future.set_exception(error)
    return future


async def _answer(
    raw: Raw, done: asyncio.Future[Any] | None, identify: Identify, bind: Bind, broken: bool
) -> tuple[Checked, bool]:
    """A batch's check: made here, or the worker's; made here too if the worker is gone
    (and the flag says so, for the batches that follow)."""
    if done is None:
        return check_batch(raw, identify, bind), broken
    try:
        answer = await done
    except BrokenProcessPool:
        return check_batch(raw, identify, bind), True
    return _from_worker(answer), broken


def _chain(first: Raw, rest: Iterator[Raw]) -> Iterator[Raw]:
    yield first
    yield from rest
