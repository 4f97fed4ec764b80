"""Job logs: reading the end of one without loading it, and keeping one under its cap.

A job's processes append to its log (`O_APPEND`) for as long as they run, whatever supervises
them. `trim` keeps a log under `LogCap.max_bytes` in place: the first `head_bytes` stay, then a
fixed-size marker line saying how many bytes of output were dropped there (counting every earlier
trim), then the most recent output. It removes the middle with `fallocate(FALLOC_FL_COLLAPSE_RANGE)`
(ext4, xfs), which the kernel orders with the job's appends, so no line is lost; where the
filesystem cannot collapse a range (tmpfs, overlayfs) it copies the kept output down and
truncates, and what the job appends in the instant between the last copy and the truncation can
be lost.

`tail` reads the last lines from the end of the file, in blocks, and never more than `max_bytes`:
a line longer than that is shown by its end, marked as cut.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ...files import open_private

MIB = 1024 * 1024
BLOCK = 64 * 1024
MARKER_SIZE = 256  # the marker's bytes, fixed so that a later trim rewrites it in place
_MARKER = re.compile(rb"\n\[runai-lite: (\d+) bytes of output dropped here")
CUT = "[runai-lite: the start of this line is not shown] "
_FALLOC_FL_COLLAPSE_RANGE = 0x08
_NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


@dataclass(frozen=True)
class LogCap:
    """A job log's bound. Above `max_bytes` the log is cut down to its first `head_bytes`, a marker,
    and its last `max_bytes // 2 - head_bytes` bytes, so that a noisy job is trimmed now and then,
    not on every write."""

    max_bytes: int = 64 * MIB
    head_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        if self.max_bytes < 64 * 1024 or not 0 <= self.head_bytes <= self.max_bytes // 4:
            raise ValueError(f"a log cap must be at least 65536 bytes with a head of at most a quarter of it "
                             f"(got {self.max_bytes} and {self.head_bytes})")

    @property
    def tail_bytes(self) -> int:
        return self.max_bytes // 2 - self.head_bytes


def marker(dropped: int) -> bytes:
    text = (f"\n[runai-lite: {dropped} bytes of output dropped here; the log keeps its beginning and its most "
            "recent output]").encode()
    return text.ljust(MARKER_SIZE - 1) + b"\n"


def trim(path: Path, cap: LogCap) -> int:
    """Cut the log at `path` down to its cap if it is above it; the bytes of output dropped now."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        stat = os.fstat(fd)
        if stat.st_size <= cap.max_bytes:
            return 0
        block = stat.st_blksize or 4096
        marker_end = -(-(cap.head_bytes + MARKER_SIZE) // block) * block  # the marker ends on a block boundary
        found = _MARKER.match(os.pread(fd, MARKER_SIZE, marker_end - MARKER_SIZE))
        length = (stat.st_size - cap.tail_bytes - marker_end) // block * block
        if length <= 0:
            return 0
        if not _collapse(fd, marker_end, length):
            _copy_down(fd, marker_end + length, marker_end)
        dropped = length + (0 if found else MARKER_SIZE)  # the first marker takes the place of some output
        os.pwrite(fd, marker((int(found.group(1)) if found else 0) + dropped), marker_end - MARKER_SIZE)
        return dropped
    finally:
        os.close(fd)


def _collapse(fd: int, offset: int, length: int) -> bool:
    """Remove [offset, offset + length) from the file; False where the filesystem cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    if libc.fallocate(fd, _FALLOC_FL_COLLAPSE_RANGE, offset, length) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NOT_SUPPORTED:
        return False
    raise OSError(code, os.strerror(code))


def _copy_down(fd: int, read_at: int, write_at: int) -> None:
    """Move everything from `read_at` to the end down to `write_at`, then end the file there."""
    while True:
        chunk = os.pread(fd, 4 * BLOCK, read_at)
        if not chunk:
            break
        os.pwrite(fd, chunk, write_at)
        read_at += len(chunk)
        write_at += len(chunk)
    os.ftruncate(fd, write_at)


def tail(path: Path, lines: int, max_bytes: int = MIB) -> tuple[list[str], int]:
    """The last `lines` lines of the file (without their newlines) and the offset after them, reading
    at most `max_bytes` from its end. ([], 0) when there is no file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], 0
    try:
        end = os.fstat(fd).st_size
        if lines <= 0:
            return [], end
        data = b""
        position = end
        while position > 0 and len(data) < max_bytes:
            step = min(BLOCK, position, max_bytes - len(data))
            position -= step
            data = os.pread(fd, step, position) + data
            # one more newline than lines wanted: the line before the first one shown has ended
            if data.count(b"\n", 0, len(data) - 1) >= lines:
                break
    finally:
        os.close(fd)
    if not data:
        return [], end
    body = data[:-1] if data.endswith(b"\n") else data
    parts = body.split(b"\n")
    complete = position == 0 or len(parts) > lines
    shown = parts[-lines:]
    text = [part.decode(errors="replace") for part in shown]
    if not complete and text:
        text[0] = CUT + text[0]
    return text, end


def append_line_once(path: Path, line: str) -> None:
    """Append `line` to the log at `path`, on a line of its own, unless the log already ends with
    it (a launch redone after the daemon died between writing it and starting the attempt)."""
    data = line.encode() + b"\n"
    fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        start = max(size - len(data) - 1, 0)
        end = os.pread(fd, size - start, start) if size else b""
        if end.endswith(data) and (start == 0 or end[:1] == b"\n"):
            return
        os.write(fd, (b"\n" if end and not end.endswith(b"\n") else b"") + data)
    finally:
        os.close(fd)
