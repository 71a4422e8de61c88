"""Time as integer milliseconds since the epoch (UTC): the same on every backend."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_DAY_S = 86_400
# Formatted dates ("2024-01-01T") by day number since the epoch. The timestamps one answer
# formats fall on a handful of days, so the cap is not reached in practice; past it the
# table starts over rather than growing with what clients store.
_DAYS: dict[int, str] = {}
_DAYS_CAP = 4096
# "HH:MM:" for each minute of a day, and "SS" for each second of a minute.
_HOUR_MINUTE = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))
_SECOND = tuple(f"{s:02d}" for s in range(60))


def _utc(seconds: int) -> str:
    """`2024-01-01T00:00:00`: `time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))`.

    The date is formatted by `time` once per day and remembered; the time of day is looked
    up (POSIX time has no leap seconds: every day is 86,400 of them). Every profile answer
    formats a handful of these, and gmtime + strftime cost about a microsecond apiece."""
    day, second = divmod(seconds, _DAY_S)
    date = _DAYS.get(day)
    if date is None:
        date = time.strftime("%Y-%m-%dT", time.gmtime(day * _DAY_S))
        if len(_DAYS) >= _DAYS_CAP:
            _DAYS.clear()
        _DAYS[day] = date
    return date + _HOUR_MINUTE[second // 60] + _SECOND[second % 60]


_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def iso_ms(ms: int) -> str:
    """`2020-12-27T10:58:45.000Z`"""
    seconds, millis = divmod(ms, 1000)
    return _utc(seconds) + _MILLIS[millis]


def iso_seconds(ms: int) -> str:
    """`2024-01-01T00:00:00Z`"""
    return _utc(ms // 1000) + "Z"
