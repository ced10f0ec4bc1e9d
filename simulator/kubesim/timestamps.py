"""metav1.Time text (RFC 3339, whole seconds, UTC), as the API server writes timestamps.

Every write stamps one or more times (creationTimestamp, managedFields entries, condition
transitions) and formatting a datetime costs more than the rest of reading the clock;
within one second the text is the same, so the last second's text is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_last_second: int | None = None
_last_text = ""


def format_seconds(moment: datetime) -> str:
    """``moment.strftime("%Y-%m-%dT%H:%M:%SZ")`` for an aware UTC datetime, cached per second."""
    global _last_second, _last_text
    delta = moment - _EPOCH
    second = delta.days * 86400 + delta.seconds  # exact: no float in the way
    if second != _last_second:
        _last_text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        _last_second = second
    return _last_text


def now_rfc3339(offset_seconds: float = 0) -> str:
    """The current time (plus ``offset_seconds``) as metav1.Time text."""
    moment = datetime.now(UTC)
    if offset_seconds:
        moment += timedelta(seconds=offset_seconds)
    return format_seconds(moment)
