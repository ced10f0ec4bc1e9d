"""How far back a watch may resume, per resource, sized like the real watch cache.

A real kube-apiserver serves watches from one in-memory cache per resource (pods,
configmaps, ...), not from etcd. Each cache is a ring buffer of recent events whose
capacity adapts: it starts at 100 events, doubles (up to 100 * 1024) when it is full and
its oldest event is younger than the "fresh" duration (75 s: the 60 s bookmark period
plus 15 s), and halves (not below 100) when it is full and even the event a quarter of
the buffer from the newest is older than that. An event leaves the window only when the
buffer is full. A watch from a resourceVersion older than the window gets the single
``ERROR`` event "too old resource version: RV (OLDEST)", where OLDEST is the version the
cache was started at while nothing has been evicted, else the first buffered event's
version minus one.

So a quiet resource keeps its window for hours, while a busy one can expire a version
a few seconds old: exactly the case a client's resume-or-relist logic must handle, and
the one a fixed 10,000-change / 300 s window hid. Each window holds the changes
themselves (references to the stored, immutable objects), which a resuming watch
replays; the store's own history plays etcd, for ``resourceVersionMatch=Exact`` lists
and continue tokens.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Events each cache holds at least, at most, and the age the cache grows to cover.
LOWER_BOUND_CAPACITY = 100
UPPER_BOUND_CAPACITY = 100 * 1024
EVENT_FRESH_SECONDS = 75.0


@dataclass(slots=True)
class _Window:
    start_rv: int  # the version the cache was filled at (its initial list)
    capacity: int
    events: collections.deque[tuple[int, float, Any]]  # (resourceVersion, recorded at, change)
    evicted: bool = False


class WatchCacheWindows:
    """One adaptive ring-buffer window per resource (keyed like the store's buckets)."""

    def __init__(
        self,
        *,
        lower_bound: int = LOWER_BOUND_CAPACITY,
        upper_bound: int = UPPER_BOUND_CAPACITY,
        fresh_seconds: float = EVENT_FRESH_SECONDS,
    ) -> None:
        if lower_bound < 1 or upper_bound < lower_bound:
            raise ValueError("watch cache bounds must satisfy 1 <= lower <= upper")
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.fresh_seconds = fresh_seconds
        self._windows: dict[object, _Window] = {}
        self._default_start = 0

    def _window(self, key: object) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(
                self._default_start, self.lower_bound, collections.deque()
            )
        return window

    def start(self, key: object, rv: int) -> None:
        """(Re)initialise ``key``'s cache at ``rv``, as a new cache's first list does."""
        self._windows[key] = _Window(rv, self.lower_bound, collections.deque())

    def restart_all(self, rv: int) -> None:
        """Every cache starts over at ``rv`` (an API server restart)."""
        self._default_start = rv
        self._windows.clear()

    def record(self, key: object, rv: int, at: float, change: Any = None) -> None:
        """An event of ``key`` at ``rv``, recorded at time ``at`` (seconds)."""
        window = self._window(key)
        events = window.events
        if len(events) >= window.capacity:
            if at - events[0][1] < self.fresh_seconds:
                window.capacity = min(window.capacity * 2, self.upper_bound)
            else:
                # the event a quarter of the buffer back from the newest (in the real
                # ring buffer's arithmetic, the oldest one when the quarter rounds to 0)
                back = window.capacity // 4
                quarter_back = events[len(events) - back] if back else events[0]
                if at - quarter_back[1] > self.fresh_seconds:
                    window.capacity = max(window.capacity // 2, self.lower_bound)
                    while len(events) > window.capacity:
                        events.popleft()
                        window.evicted = True
        if len(events) >= window.capacity:
            events.popleft()
            window.evicted = True
        events.append((rv, at, change))

    def oldest(self, key: object) -> int:
        """The version below which a watch of ``key`` is 410 Expired."""
        window = self._window(key)
        if window.evicted and window.events:
            return window.events[0][0] - 1
        return window.start_rv

    def capacity(self, key: object) -> int:
        return self._window(key).capacity

    def since(self, key: object, rv: int) -> Iterator[Any]:
        """The recorded changes of ``key`` newer than ``rv``, oldest first."""
        events = self._window(key).events
        start = len(events)
        while start > 0 and events[start - 1][0] > rv:
            start -= 1
        for i in range(start, len(events)):
            yield events[i][2]
