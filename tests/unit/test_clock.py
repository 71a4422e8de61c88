from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

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
