"""The request log's spool: every row on local disk before its request answers, until the
database has it.

Layout: `REQUEST_LOG_SPOOL_DIR/<database>/<host>-<pid>-<ns>.spool`, one JSON object a line
(`RequestLog` column name -> value), appended with one `write()` per row. The `<database>`
folder names the database the rows belong to (vendor, host, port, name), so a spool is only
ever shipped to its own database, whatever else shares the directory.

A file belongs to the process that created it for as long as that process lives: it holds an
exclusive `flock()` on it from creation (the file is locked under a temporary name and only then
renamed into place, so no one can take it first). The kernel releases the lock when the process
dies, however it dies (`kill -9` included), and only then can another process take it:
`adoptable()` lists files whose lock it could take, and the adopter keeps the lock while it ships
and deletes the file. Two adopters cannot both hold it; one that took the lock on a file another
adopter had just deleted sees a different inode behind the path and lets it go.

Shipping inserts with `ON CONFLICT (request_id) DO NOTHING` (bulk_create's ignore_conflicts):
a row the database already has (the owner committed it before it died, or an adopter died after
committing part of a file) is not written twice.

A write reaches the operating system's page cache at once, so a killed process loses nothing;
`fsync()` (in batches, by the writer thread) is what protects rows against a crash of the whole
machine. The spool is bounded by REQUEST_LOG_SPOOL_MAX_BYTES over the whole directory (checked
against the directory's size as of the writer's last scan, every few seconds, plus this
process's own writes since).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

logger = logging.getLogger(__name__)

SUFFIX = ".spool"
# A file is closed for new rows past this size; it is deleted once all its rows are committed.
SEGMENT_MAX_BYTES = 4 * 1024 * 1024


def database_folder(settings_dict: dict, vendor: str) -> str:
    """The spool sub-folder of one database: readable, and unique per vendor/host/port/name."""
    identity = "|".join(
        str(settings_dict.get(k) or "") for k in ("HOST", "PORT", "NAME")
    )  # fmt: skip
    digest = hashlib.sha256(f"{vendor}|{identity}".encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(settings_dict.get("NAME") or "db")).name)
    return f"{vendor}-{name[:40]}-{digest}"


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(record: dict) -> bytes:
    return (json.dumps(record, default=_json_default, separators=(",", ":")) + "\n").encode()


class Segment:
    """One spool file this process owns (locked) and appends to."""

    __slots__ = ("appended", "bytes", "done", "fd", "path", "sealed", "spilled", "synced")

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd
        self.appended = 0  # rows written to the file
        self.done = 0  # rows committed to the database from memory
        self.bytes = 0
        self.sealed = False  # no new rows
        self.spilled = False  # its rows are shipped from the file, not from memory
        self.synced = 0  # bytes known to be on disk (fsync)

    @property
    def settled(self) -> bool:
        """Sealed and every row committed from memory: the file can go."""
        return self.sealed and not self.spilled and self.done >= self.appended


def fsync(pending: list[tuple[Segment, int]]) -> None:
    """`fsync` each file of `Spool.to_sync()` and note how far it is durable."""
    for segment, size in pending:
        with contextlib.suppress(OSError):  # a file deleted meanwhile: nothing left to keep
            os.fsync(segment.fd)
        segment.synced = max(segment.synced, size)


class Spool:
    """This process's spool files in one database's folder (see the module docstring).

    Not thread-safe: the request-log writer calls it under its own lock."""

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = directory
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self.current: Segment | None = None
        self.segments: list[Segment] = []  # every file this process owns, oldest first
        self.others_bytes = 0  # other files in the folder, at the last scan
        self.pid = os.getpid()
        self._seq = 0

    # --- appending (request threads, under the writer's lock) --------------------------------

    def own_bytes(self) -> int:
        return sum(segment.bytes for segment in self.segments)

    def append(self, record: dict) -> Segment | None:
        """Write one row; its segment, or None when the spool is full or the write failed."""
        line = encode(record)
        if self.own_bytes() + self.others_bytes + len(line) > self.max_bytes:
            return None
        segment = self.current
        try:
            if segment is None or segment.sealed:
                segment = self.current = self._new_segment()
            written = os.write(segment.fd, line)
        except OSError as exc:  # disk full, folder gone: the row stays in memory only
            logger.warning("request-log spool write failed (%s); row kept in memory", exc)
            return None
        segment.bytes += written
        if written != len(line):  # a short write (disk full): a torn line the shipper skips
            return None
        segment.appended += 1
        return segment

    def _new_segment(self) -> Segment:
        self._seq += 1
        name = f"{socket.gethostname()}-{self.pid}-{time.time_ns()}-{self._seq}"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = self.directory / f"{name}{SUFFIX}"
        os.rename(temporary, path)  # only now can an adopter see it, and it is locked
        segment = Segment(path, fd)
        self.segments.append(segment)
        return segment

    # --- bookkeeping (the writer thread) ------------------------------------------------------

    def rows_done(self, segment: Segment, count: int) -> None:
        segment.done += count
        if segment is self.current and segment.bytes >= SEGMENT_MAX_BYTES:
            segment.sealed = True
        self._remove_settled()

    def spill(self) -> list[Segment]:
        """Seal every segment with rows not yet committed and mark it to be shipped from its
        file; return them. The caller forgets those rows in memory."""
        spilled = []
        for segment in self.segments:
            if segment.spilled or segment.done >= segment.appended:
                continue
            segment.sealed = segment.spilled = True
            spilled.append(segment)
        self._remove_settled()
        return spilled

    def to_ship(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.spilled]

    def shipped(self, segment: Segment) -> None:
        self._delete(segment)

    def to_sync(self) -> list[tuple[Segment, int]]:
        """The files holding rows not yet committed and not yet made durable against a
        machine crash, with their size now. The writer thread `fsync`s them, outside its lock
        (requests append meanwhile), at most every REQUEST_LOG_SPOOL_FSYNC_SECONDS."""
        return [
            (segment, segment.bytes)
            for segment in self.segments
            if segment.synced < segment.bytes and segment.done < segment.appended
        ]

    def close(self) -> int:
        """At exit: delete the files whose rows are all committed; release the others for
        adoption (closing them releases the lock). Returns the rows left in files."""
        left = 0
        for segment in list(self.segments):
            if not segment.spilled and segment.done >= segment.appended:
                self._delete(segment)
            else:
                left += segment.appended - (0 if segment.spilled else segment.done)
                os.close(segment.fd)
        self.segments.clear()
        self.current = None
        return left

    def forget_after_fork(self) -> None:
        """In a forked child: close the parent's files without deleting them (the lock is
        shared with the parent until every descriptor is closed)."""
        for segment in self.segments:
            with contextlib.suppress(OSError):
                os.close(segment.fd)
        self.segments.clear()
        self.current = None

    def _remove_settled(self) -> None:
        for segment in [s for s in self.segments if s.settled]:
            self._delete(segment)

    def _delete(self, segment: Segment) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment.path)
        with contextlib.suppress(OSError):
            os.close(segment.fd)
        self.segments.remove(segment)
        if self.current is segment:
            self.current = None

    # --- other processes' files ---------------------------------------------------------------

    def scan(self) -> int:
        """Measure the folder (other processes' files) for the size bound; returns its total."""
        mine = {segment.path for segment in self.segments}
        others = 0
        for path in self.directory.glob(f"*{SUFFIX}"):
            if path not in mine:
                with contextlib.suppress(FileNotFoundError):
                    others += path.stat().st_size
        self.others_bytes = others
        return others + self.own_bytes()

    def adoptable(self) -> Iterator[Adopted]:
        """Files of processes that are gone, each locked for this process while it is used."""
        mine = {segment.path for segment in self.segments}
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path in mine:
                continue
            adopted = Adopted.take(path)
            if adopted is not None:
                yield adopted


class Adopted:
    """An orphaned spool file, locked by this process (release with `done()` or `release()`)."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd

    @classmethod
    def take(cls, path: Path) -> Adopted | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # its owner is alive, or another adopter has it
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # shipped and deleted by another adopter while this one waited
            os.close(fd)
            return None
        return cls(path, fd)

    def rows(self) -> tuple[list[dict], int]:
        """(records, lines that could not be read: a torn last line, say)."""
        with os.fdopen(os.dup(self.fd), "rb") as file:
            records, bad = [], 0
            for line in file:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    bad += 1
        return records, bad

    def done(self) -> None:
        """Shipped: delete it, then let go of the lock."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)

    def release(self) -> None:
        os.close(self.fd)


def spool_rows(path: Path) -> Iterator[dict]:
    """The records of one spool file (for tests and by-hand inspection)."""
    with path.open("rb") as file:
        for line in file:
            with contextlib.suppress(ValueError):
                yield json.loads(line)
