"""The per-resource watch window's sizing rules, on a fake clock."""

from __future__ import annotations

from kubesim.watch_cache import WatchCacheWindows


def fill(windows: WatchCacheWindows, start: int, count: int, at: float, step: float) -> int:
    rv = start
    for i in range(count):
        rv += 1
        windows.record("pods", rv, at + i * step, rv)
    return rv


def test_a_fresh_full_buffer_doubles_instead_of_evicting():
    windows = WatchCacheWindows(lower_bound=4, upper_bound=16, fresh_seconds=75)
    fill(windows, 0, 10, at=0.0, step=1.0)  # 10 events within 10 s
    assert windows.capacity("pods") == 16
    assert windows.oldest("pods") == 0  # nothing evicted: resumable from the start
    assert list(windows.since("pods", 7)) == [8, 9, 10]


def test_a_stale_full_buffer_evicts_and_names_the_oldest_version():
    windows = WatchCacheWindows(lower_bound=4, upper_bound=16, fresh_seconds=75)
    last = fill(windows, 0, 5, at=0.0, step=100.0)  # each event older than 75 s by the next
    assert windows.capacity("pods") == 4
    assert last == 5
    assert windows.oldest("pods") == 1  # first buffered event (2) minus one
    assert list(windows.since("pods", 1)) == [2, 3, 4, 5]


def test_the_buffer_halves_when_even_its_newest_quarter_is_stale():
    windows = WatchCacheWindows(lower_bound=4, upper_bound=64, fresh_seconds=75)
    fill(windows, 0, 16, at=0.0, step=0.1)  # a burst: grows to 16
    assert windows.capacity("pods") == 16
    fill(windows, 16, 1, at=1000.0, step=0.0)  # much later: full and stale
    assert windows.capacity("pods") == 8
    assert windows.oldest("pods") == 9  # 8 events kept: 10..17


def test_resources_have_separate_windows_and_restart_forgets_all():
    windows = WatchCacheWindows(lower_bound=2, upper_bound=2, fresh_seconds=0)
    fill(windows, 0, 5, at=0.0, step=1.0)
    windows.record("secrets", 6, 10.0, 6)
    assert windows.oldest("pods") == 3 and windows.oldest("secrets") == 0
    windows.restart_all(6)
    assert windows.oldest("pods") == 6 and list(windows.since("pods", 0)) == []
