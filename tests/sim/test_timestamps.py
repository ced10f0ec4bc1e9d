"""Timestamps cached per second read exactly as formatting each one would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim import timestamps

MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(st.lists(MOMENTS, min_size=1, max_size=6))
def test_cached_text_equals_strftime(moments: list[datetime]) -> None:
    for moment in moments:
        for near in (moment, moment + timedelta(microseconds=1), moment - timedelta(microseconds=1)):
            assert timestamps.format_seconds(near) == near.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_second_boundary() -> None:
    before = datetime(2030, 5, 6, 7, 8, 9, 999999, tzinfo=UTC)
    after = before + timedelta(microseconds=1)
    assert timestamps.format_seconds(before) == "2030-05-06T07:08:09Z"
    assert timestamps.format_seconds(after) == "2030-05-06T07:08:10Z"
    assert timestamps.format_seconds(before) == "2030-05-06T07:08:09Z"


def test_now_with_an_offset() -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    text = timestamps.now_rfc3339(30)
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert start + timedelta(seconds=30) <= parsed <= datetime.now(UTC) + timedelta(seconds=30)
