from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core import clock
from api.core.clock import iso_ms, iso_seconds

# 1970 to 9999: what the API's timestamps can hold.
MS = st.integers(min_value=0, max_value=253_402_300_799_999)


def test_iso_formats_match_the_documented_examples() -> None:
    assert iso_ms(1_609_066_725_000) == "2020-12-27T10:58:45.000Z"
    assert iso_seconds(1_704_067_200_999) == "2024-01-01T00:00:00Z"


@given(MS)
def test_iso_ms_agrees_with_datetime(ms: int) -> None:
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    assert iso_ms(ms) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@given(MS)
def test_iso_seconds_agrees_with_datetime(ms: int) -> None:
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    assert iso_seconds(ms) == dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _strftime(seconds: int) -> str:
    # The formatter `_utc` replaced: gmtime + strftime on every call.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


# Year 1 to 9999, before the epoch included: every millisecond timestamp a row can hold
# that the API can write out.
ANY_MS = st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999)


@given(ANY_MS)
def test_formatted_timestamps_equal_gmtime_and_strftime(ms: int) -> None:
    assert iso_seconds(ms) == _strftime(ms // 1000) + "Z"
    assert iso_ms(ms) == f"{_strftime(ms // 1000)}.{ms % 1000:03d}Z"


@pytest.mark.parametrize(
    "seconds",
    [0, -1, 59, 60, 3599, 3600, 86_399, 86_400, -86_400, -86_401, 951_782_400, 253_402_300_799],
)
def test_formatted_day_and_minute_boundaries_equal_strftime(seconds: int) -> None:
    assert clock._utc(seconds) == _strftime(seconds)


def test_remembered_dates_stay_bounded() -> None:
    for day in range(clock._DAYS_CAP + 10):
        assert clock._utc(day * 86_400 + 1) == _strftime(day * 86_400 + 1)
    assert len(clock._DAYS) <= clock._DAYS_CAP
