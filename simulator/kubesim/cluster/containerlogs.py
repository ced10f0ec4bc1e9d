"""Container logs as a node keeps them: one timestamped record per line, read with options.

A container runtime stores each line of a container's output with the time it was
written (the CRI log format: ``<time> <stream> <P|F> <text>``; here ``<nanoseconds> <P|F>
<text>``, stdout and stderr being one stream); that is what
lets the kubelet answer ``pods/{name}/log`` with ``timestamps``, ``sinceSeconds`` and
``sinceTime``, and what ``terminationMessagePolicy: FallbackToLogsOnError`` reads the
last lines from. This module keeps process-mode output the same way and answers the
log options with the kubelet's semantics:

- ``tailLines`` picks the last N lines first, then ``sinceSeconds``/``sinceTime`` drops
  lines written before the cut-off;
- ``timestamps`` prefixes every line with its time, 9 fractional digits
  (``2026-11-24T07:08:09.123456789Z hello``);
- ``limitBytes`` caps the bytes sent (timestamps included), cutting a line if need be;
  a follow stream ends when the cap is reached.

Output is split into lines as a runtime does: a line is recorded when its newline
arrives; a trailing piece without one is recorded when the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesim import field_errors
from kubesim.errors import StatusError, invalid

# the kubelet's limits for a termination message taken from the log
TERMINATION_MESSAGE_LOG_LINES = 80
TERMINATION_MESSAGE_LOG_BYTES = 2048
TERMINATION_MESSAGE_FILE_BYTES = 4096


def format_log_time(ns: int) -> str:
    """The kubelet's fixed-width RFC 3339 time with nanoseconds."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{fraction:09d}Z"


def parse_since_time(value: str) -> int:
    """``sinceTime`` (RFC 3339, optional fraction) as nanoseconds since the epoch."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    whole, _, rest = text.partition(".")
    fraction = ""
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, text = rest[:digits], whole + rest[digits:]
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("no time zone")
    return int(when.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9])


@dataclass(frozen=True)
class LogOptions:
    """``pods/{name}/log`` options after the API server's validation."""

    tail_lines: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def from_query(
        cls, query: dict[str, Any], pod_name: str, now_ns: int | None = None
    ) -> LogOptions:
        """Validate like the API server's PodLogOptions validation (422 listing each cause)."""
        causes: list[dict[str, Any]] = []
        tail = _number(query.get("tailLines"))
        limit = _number(query.get("limitBytes"))
        since_seconds = _number(query.get("sinceSeconds"))
        since_time = query.get("sinceTime")
        if tail is not None and tail < 0:
            causes.append(
                field_errors.invalid("tailLines", tail, "must be greater than or equal to 0")
            )
        if limit is not None and limit < 1:
            causes.append(field_errors.invalid("limitBytes", limit, "must be greater than 0"))
        since_ns: int | None = None
        if since_seconds is not None and since_time:
            causes.append(
                field_errors.forbidden(
                    "", "at most one of `sinceTime` or `sinceSeconds` may be specified"
                )
            )
        elif since_seconds is not None:
            if since_seconds < 1:
                causes.append(
                    field_errors.invalid("sinceSeconds", since_seconds, "must be greater than 0")
                )
            else:
                now = time.time_ns() if now_ns is None else now_ns
                since_ns = now - since_seconds * 1_000_000_000
        elif since_time:
            try:
                since_ns = parse_since_time(str(since_time))
            except ValueError:
                raise _bad_since_time(str(since_time)) from None
        if causes:
            raise invalid("PodLogOptions", pod_name, causes)
        return cls(
            tail_lines=tail,
            since_ns=since_ns,
            timestamps=str(query.get("timestamps", "")).lower() in ("true", "1"),
            limit_bytes=limit,
        )


def _number(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


def _bad_since_time(value: str) -> StatusError:
    from kubesim.errors import bad_request

    return bad_request(
        f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}" as "2006"'
    )


@dataclass(frozen=True)
class LogRecord:
    ns: int
    text: bytes
    complete: bool  # ended with a newline

    def render(self, timestamps: bool) -> bytes:
        prefix = (format_log_time(self.ns) + " ").encode() if timestamps else b""
        return prefix + self.text + (b"\n" if self.complete else b"")


def _encode(record: LogRecord) -> bytes:
    # the time as integer nanoseconds: formatting it only for the lines a reader asks
    # for with timestamps keeps writing and reading a long log cheap
    tag = b"F" if record.complete else b"P"
    return b"%d %s %s\n" % (record.ns, tag, record.text)


def _decode(line: bytes) -> LogRecord | None:
    """One stored record (its trailing newline removed); None for a damaged one."""
    try:
        stamp, tag, text = line.split(b" ", 2)
        return LogRecord(int(stamp), text, tag == b"F")
    except ValueError:
        return None


def select(records: list[LogRecord], options: LogOptions) -> list[LogRecord]:
    """tailLines first, then the since cut-off, as the kubelet applies them."""
    if options.tail_lines is not None:
        records = records[-options.tail_lines :] if options.tail_lines > 0 else []
    if options.since_ns is not None:
        records = [r for r in records if r.ns >= options.since_ns]
    return records


def render(records: list[LogRecord], options: LogOptions | None = None) -> str:
    """The ``pods/{name}/log`` body for these records under these options."""
    options = options or LogOptions()
    body = b"".join(r.render(options.timestamps) for r in select(records, options))
    if options.limit_bytes is not None:
        body = body[: options.limit_bytes]
    return body.decode("utf-8", "replace")


def log_tail(records: list[LogRecord], lines: int, max_bytes: int) -> str:
    """The last ``lines`` lines, at most ``max_bytes`` of them (the end is kept)."""
    body = b"".join(r.render(False) for r in records[-lines:] if lines > 0)
    return body[-max_bytes:].decode("utf-8", "replace")


def records_of(text: str, ns: int) -> list[LogRecord]:
    """Text written all at once (a simulated container's output) as records."""
    data = text.encode()
    lines = data.split(b"\n")
    last = lines.pop()
    records = [LogRecord(ns, line, True) for line in lines]
    if last:
        records.append(LogRecord(ns, last, False))
    return records


class ContainerLog:
    """One container run's stdout+stderr: a file of records plus a condition for followers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False
        self._changed = asyncio.Condition()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self._closed_event = asyncio.Event()

    def _write(self, text: bytes, complete: bool) -> None:
        self._file.write(_encode(LogRecord(time.time_ns(), text, complete)))

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Copy the process's output into records, a line at a time, until end of stream."""
        partial = b""
        try:
            while chunk := await stream.read(65536):
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    self._write(line, True)
                if lines:
                    self._file.flush()
                    async with self._changed:
                        self._changed.notify_all()
        finally:
            if partial:
                self._write(partial, False)
            self._file.close()
            self.closed = True
            self._closed_event.set()
            async with self._changed:
                self._changed.notify_all()

    def close(self) -> None:
        """No process will write here (it could not be started)."""
        self._file.close()
        self.closed = True
        self._closed_event.set()

    async def wait_closed(self) -> None:
        """Until the last output is recorded (the process and everything it forked are gone)."""
        await self._closed_event.wait()

    def records(self, last: int | None = None) -> list[LogRecord]:
        """The stored lines (only the ``last`` N are decoded when given: ``tailLines``)."""
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")[:-1]  # the last piece is empty or partial
        if last is not None:
            lines = lines[-last:] if last > 0 else []
        return [r for r in map(_decode, lines) if r is not None]

    def text(self, options: LogOptions | None = None) -> str:
        return render(self.records((options or LogOptions()).tail_lines), options)

    async def follow(self, options: LogOptions | None = None) -> AsyncIterator[str]:
        """The selected existing lines, then new ones as they are written, until the run ends
        (or ``limitBytes`` have been sent)."""
        options = options or LogOptions()
        budget = options.limit_bytes
        with self.path.open("rb") as reader:
            existing = reader.read()
            end = existing.rfind(b"\n") + 1
            reader.seek(end)
            records = [r for r in map(_decode, existing[:end].split(b"\n")[:-1]) if r]
            initial = b"".join(r.render(options.timestamps) for r in select(records, options))
            pending = b""
            while True:
                piece = initial
                initial = b""
                data = pending + reader.read(65536)
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                for line in data[:cut].split(b"\n")[:-1]:
                    record = _decode(line)
                    if record is not None:
                        piece += record.render(options.timestamps)
                if piece:
                    if budget is not None:
                        piece = piece[:budget]
                        budget -= len(piece)
                    yield piece.decode("utf-8", "replace")
                    if budget == 0:
                        return
                    continue
                if self.closed and not pending and reader.tell() >= self.path.stat().st_size:
                    return
                async with self._changed:
                    if not self.closed and reader.tell() >= self.path.stat().st_size:
                        await self._changed.wait()


def termination_message(
    container: dict[str, Any],
    exit_code: int,
    records: list[LogRecord],
    rootfs: Path | None = None,
) -> str | None:
    """The terminated state's ``message``, as the kubelet fills it in.

    The file at ``terminationMessagePath`` (under the pod's rootfs in process mode) wins
    when it has content; with ``terminationMessagePolicy: FallbackToLogsOnError`` and a
    non-zero exit, an empty file means the last 80 lines (at most 2 KiB) of the log
    instead — which is how a spawn page can show why a notebook server died.
    """
    if rootfs is not None:
        path = str(container.get("terminationMessagePath") or "/dev/termination-log")
        file = rootfs / path.lstrip("/")
        with contextlib.suppress(OSError):
            if file.is_file():
                content = file.read_bytes()[:TERMINATION_MESSAGE_FILE_BYTES]
                if content:
                    return content.decode("utf-8", "replace")
    policy = container.get("terminationMessagePolicy") or "File"
    if policy == "FallbackToLogsOnError" and exit_code != 0:
        tail = log_tail(records, TERMINATION_MESSAGE_LOG_LINES, TERMINATION_MESSAGE_LOG_BYTES)
        return tail or None
    return None
