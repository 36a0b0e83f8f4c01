"""Request-log rows written by one background thread per process, in groups.

A gateway request hands its row to the writer and answers. The writer thread wakes on the first
row, lets more gather for REQUEST_LOG_BATCH_SECONDS (50 ms; not when a request waits for its
row), and writes them all in one statement and one commit: a `COPY` on PostgreSQL (an INSERT
for a lone row), `bulk_create` elsewhere. On this machine a row costs ~0.5 ms of CPU as a lone
INSERT and ~0.1 ms in a COPY of 8; taking the database round trip off the request saves ~2 ms
of latency, and writing in bigger, rarer groups keeps the writer from taking the GIL from the
requests at every row (bench/README.md).

What can happen to a row (docs/observability.md, "Request log durability"):

- Before the request answers, the row is appended to this process's spool file on local disk
  (analytics/spool.py; one write(), fsync'd in batches every REQUEST_LOG_SPOOL_FSYNC_SECONDS by
  this thread). It is committed within about REQUEST_LOG_BATCH_SECONDS of the answer; a spool
  file whose rows are all committed is deleted. `flush()` waits for everything queued so far;
  the process drains the queue when it exits (`atexit`, and multiprocessing's exit finalizers,
  which granian's workers run instead of `atexit`).
- The database is unreachable (or memory holds REQUEST_LOG_QUEUE_MAX_ROWS rows): the rows on
  disk are forgotten in memory and shipped from their files once it answers again (retried
  with backoff up to 5 s apart); requests keep being answered meanwhile.
- The process dies (SIGKILL, OOM, a crash): its spool files are adopted by another process
  (this thread looks for orphans every REQUEST_LOG_SPOOL_ADOPT_SECONDS; the Celery task
  `ship_request_log_spool_task` too) and shipped, without writing any row twice.
- A row cannot be spooled (the spool is full or unset, the disk refuses the write): it waits
  in memory as above, and past REQUEST_LOG_QUEUE_MAX_ROWS it is dropped, with an error line and
  `auterity_request_log_dropped_total`.
- The database refuses a row (a constraint): the group is retried one row at a time so that
  only that row fails, with an error line and the same counter.
- With REQUEST_LOG_COMMIT_BEFORE_RESPONSE each request waits until its own row is committed
  (or, while the database is unreachable, safe in the spool).

A caller inside a transaction (`transaction.atomic`) writes its row itself, in that
transaction.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing.util
import os
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)

from core import metrics

from .models import RequestLog
from .spool import Adopted, Spool, database_folder, fsync

logger = logging.getLogger(__name__)

# Backoff between retries of a group the database could not take (seconds).
_RETRY_FIRST, _RETRY_MAX = 0.2, 5.0
# A group stops gathering rows at this size (one COPY).
_BATCH_MAX_ROWS = 1000
# RequestLogWriter's spool_dir default: REQUEST_LOG_SPOOL_DIR.
_FROM_SETTINGS = "<REQUEST_LOG_SPOOL_DIR>"


class _Entry:
    __slots__ = ("done", "error", "event", "fields", "segment")

    def __init__(self, fields: dict, waited: bool = False):
        self.fields = fields
        self.segment = None  # the spool file holding the row, if it is on disk
        # Only a row a request is blocked on (commit before response) has one.
        self.event = threading.Event() if waited else None
        self.done = False
        self.error: BaseException | None = None

    @property
    def waited(self) -> bool:
        return self.event is not None

    def finish(self, error: BaseException | None = None) -> None:
        self.done = error is None
        self.error = error
        if self.event is not None:
            self.event.set()


class RequestLogWriter:
    """Per-process background writer of request-log rows (see the module docstring)."""

    def __init__(
        self,
        using: str = DEFAULT_DB_ALIAS,
        max_rows: int | None = None,
        spool_dir: Path | str | None = _FROM_SETTINGS,
    ):
        self.using = using
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._queue: list[_Entry] = []
        self._in_progress = 0  # rows taken by the writer thread and not yet finished
        self._thread: threading.Thread | None = None
        self._closing = False
        self._columns = _Columns()
        self._spool_dir = spool_dir
        self._spool: Spool | None = None
        self._spool_opened = False
        self._shipping = 0  # rows of spool files the writer thread is shipping now
        self._scanned_at = float("-inf")
        self._synced_at = 0.0
        self._batch: list[_Entry] = []  # the rows the writer thread is writing now

    # --- the spool (analytics/spool.py) ------------------------------------------------------

    def spool(self) -> Spool | None:
        """This process's spool for its database, opened on first use (None: disabled, or the
        folder cannot be made). Under self._cond."""
        if not self._spool_opened:
            self._spool_opened = True
            directory = self._spool_dir
            if directory is _FROM_SETTINGS:
                directory = settings.REQUEST_LOG_SPOOL_DIR
            if directory:
                connection = connections[self.using]
                folder = Path(directory) / database_folder(
                    connection.settings_dict, connection.vendor
                )
                try:
                    self._spool = Spool(folder, settings.REQUEST_LOG_SPOOL_MAX_BYTES)
                except OSError as exc:
                    logger.error("request-log spool %s unusable (%s); rows kept in memory only",
                                 folder, exc)  # fmt: skip
        return self._spool

    def _spill(self, spool: Spool) -> None:
        """Under self._cond: the rows on disk and not yet committed are shipped from their
        files from now on, not from memory (the database is unreachable, or memory is full).
        A request waiting for such a row is answered: its row is safe on disk."""
        spilled = set(map(id, spool.spill()))
        if not spilled:
            return
        kept = []
        for entry in self._queue:
            if entry.segment is not None and id(entry.segment) in spilled:
                if entry.waited:
                    entry.finish()
            else:
                kept.append(entry)
        self._queue = kept
        self._cond.notify_all()

    # --- producers ---------------------------------------------------------------------------

    def write(self, fields: dict, *, wait: bool = False) -> None:
        """Queue the row `RequestLog(**fields)` would be. With `wait`, return only once it is
        committed, raising the database's error if it was refused. A misspelt field raises
        TypeError at once, in either case."""
        self._columns.check(fields)
        if connections[self.using].in_atomic_block:
            RequestLog(**fields).save(force_insert=True, using=self.using)
            return
        entry = _Entry(fields, waited=wait)
        limit = self.max_rows or settings.REQUEST_LOG_QUEUE_MAX_ROWS
        with self._cond:
            spool = self.spool()
            if spool is not None:
                entry.segment = spool.append(self._columns.record(fields))
            if len(self._queue) >= limit and not wait:
                if entry.segment is None:
                    _dropped(1, _full_reason(limit, spool))
                    return
                # Memory is full but the row is on disk: ship the spool's rows from there.
                self._spill(spool)
                self._start_thread()
                return
            was_empty = not self._queue
            self._queue.append(entry)
            self._start_thread()
            if was_empty or wait or len(self._queue) >= _BATCH_MAX_ROWS:
                # Wake the writer: it sleeps on an empty queue, and while it gathers a group
                # only a waiting request or a full group ends the wait; other rows just join.
                # (Waking it for every row cost a thread switch and the GIL per request.)
                self._cond.notify_all()
        if wait:
            entry.event.wait()
            if entry.error is not None:
                raise entry.error

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued before this call is written (or refused). False if
        `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_progress or self._has_spilled():
                self._start_thread()  # if it is not running
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued (for at most `timeout` seconds) and stop the thread; rows still
        queued then are reported lost. Called at process exit."""
        timeout = settings.REQUEST_LOG_DRAIN_SECONDS if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self.flush(timeout):
            with self._cond:
                # Rows on disk are not lost: the next process adopts their files.
                lost = sum(1 for e in (*self._queue, *self._batch) if e.segment is None)
            _dropped(lost, f"the process exited before they were written ({timeout:g} s)")
        report_drops()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # It closes its database connection on the way out. Within the same `timeout`: a
            # thread stuck in a write is not waited for twice (its rows are counted lost).
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            if self._spool is not None:
                left = self._spool.close()
                if left:
                    logger.warning(
                        "%d request-log row(s) left in the spool %s for the next process",
                        left,
                        self._spool.directory,
                    )
            self._spool, self._spool_opened = None, False

    def pending(self) -> int:
        """Rows in memory not yet committed (rows in spool files are counted by
        `spooled()`)."""
        with self._cond:
            return len(self._queue) + self._in_progress

    def spooled(self) -> int:
        """Rows waiting in this process's spool files to be shipped from there."""
        with self._cond:
            spool = self._spool
            if spool is None:
                return 0
            return sum(segment.appended for segment in spool.to_ship())

    # --- the writer thread -------------------------------------------------------------------

    def _start_thread(self) -> None:
        # Under self._cond.
        if self._thread is not None and self._thread.is_alive():
            return
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()
        _drain_at_exit_of_this_process()

    def _run(self) -> None:
        backoff = _RETRY_FIRST
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._has_spilled():
                        if self._closing:
                            return
                        wait = self._idle_wait()
                        if wait is not None and wait <= 0:
                            break
                        self._cond.wait(wait)
                    batch: list[_Entry] = []
                    if self._queue:
                        self._gather()
                        batch, self._queue = self._queue, []
                    self._batch = batch
                    self._in_progress = len(batch)
                unreachable = False
                if batch:
                    retry, unreachable = self._write_batch(batch)
                    with self._cond:
                        retry = self._after_batch(batch, retry, unreachable)
                        if retry:
                            # The database is unreachable: keep the rows, first in line.
                            self._queue[:0] = retry
                        self._in_progress = 0
                        self._batch = []
                        self._cond.notify_all()
                if not unreachable:
                    unreachable = not self._spool_work()
                with self._cond:
                    held = len(self._queue)
                    self._cond.notify_all()
                _held(held)
                if _drops_unreported:
                    report_drops()
                if unreachable:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _RETRY_MAX)
                else:
                    backoff = _RETRY_FIRST
        finally:
            connections[self.using].close()

    def _idle_wait(self) -> float | None:
        """Under self._cond, queue empty: how long the thread may sleep (None: until a row
        comes). With a spool it wakes to fsync and to look for orphaned files."""
        spool = self.spool()
        if spool is None:
            return None
        now = time.monotonic()
        return min(
            self._scanned_at + settings.REQUEST_LOG_SPOOL_ADOPT_SECONDS - now,
            settings.REQUEST_LOG_SPOOL_ADOPT_SECONDS,
        )

    def _has_spilled(self) -> bool:
        return self._spool is not None and any(s.spilled for s in self._spool.segments)

    def _after_batch(self, batch: list[_Entry], retry: list[_Entry], unreachable: bool):
        """Under self._cond: account for a written batch in the spool; after a failed one,
        hand its rows on disk over to their files. Returns the rows to keep in memory."""
        spool = self._spool
        if spool is None:
            return retry
        if not unreachable:
            done: dict[int, tuple] = {}
            for entry in batch:
                if entry.segment is not None:
                    segment, count = done.get(id(entry.segment), (entry.segment, 0))
                    done[id(entry.segment)] = (segment, count + 1)
            for segment, count in done.values():
                spool.rows_done(segment, count)
            return retry
        self._spill(spool)
        kept = []
        for entry in retry:
            if entry.segment is None:
                kept.append(entry)
            elif entry.waited:
                entry.finish()  # on disk: as safe as committed, and shipped from there
        return kept

    def _spool_work(self) -> bool:
        """Ship the files this process spilled and the orphans of dead processes; fsync what
        is due. False if the database was unreachable."""
        spool = self._spool
        if spool is None:
            return True
        now = time.monotonic()
        if now - self._synced_at >= settings.REQUEST_LOG_SPOOL_FSYNC_SECONDS:
            self._synced_at = now
            with self._cond:
                pending = spool.to_sync()
            fsync(pending)  # not under the lock: requests keep appending meanwhile
        with self._cond:
            own = spool.to_ship()
        for segment in own:
            records, bad = _read_records(segment.path)
            if not self._ship(records, bad, segment.path):
                return False
            with self._cond:
                spool.shipped(segment)
        if now - self._scanned_at < settings.REQUEST_LOG_SPOOL_ADOPT_SECONDS:
            return True
        self._scanned_at = now
        with self._cond:
            total = spool.scan()
        _spool_size(total)
        for adopted in spool.adoptable():
            try:
                records, bad = adopted.rows()
                if not self._ship(records, bad, adopted.path):
                    adopted.release()
                    return False
            except BaseException:
                adopted.release()
                raise
            adopted.done()
            logger.info(
                "request-log spool %s adopted: %d row(s) shipped", adopted.path.name, len(records)
            )
        return True

    def ship_orphans(self) -> int:
        """Ship, in this thread, the spool files of processes that are gone (the Celery task's
        way in, for a host whose web processes are not running); returns the rows shipped.
        Raises OperationalError if the database is unreachable (the files stay)."""
        with self._cond:
            spool = self.spool()
        if spool is None:
            return 0
        shipped = 0
        for adopted in spool.adoptable():
            try:
                records, bad = adopted.rows()
                if not self._ship(records, bad, adopted.path):
                    raise OperationalError(f"request-log spool {adopted.path.name} not shipped")
            except BaseException:
                adopted.release()
                raise
            adopted.done()
            shipped += len(records)
        return shipped

    def _bulk_insert(self, rows: list[RequestLog]) -> None:
        """INSERT ... ON CONFLICT (request_id) DO NOTHING: a row already there stays as it is."""
        RequestLog.objects.using(self.using).bulk_create(rows, ignore_conflicts=True)

    def _ship(self, records: list[dict], unreadable: int, path: Path) -> bool:
        """Insert a spool file's rows, skipping those the database has; False if unreachable
        (the file is kept and tried again)."""
        _dropped(unreadable, f"unreadable line(s) in the request-log spool {path.name}")
        rows = [self._columns.from_record(record) for record in records]
        try:
            for start in range(0, len(rows), _BATCH_MAX_ROWS):
                chunk = rows[start : start + _BATCH_MAX_ROWS]
                try:
                    self._bulk_insert(chunk)
                except (OperationalError, InterfaceError):
                    raise
                except DatabaseError:
                    for one in chunk:  # only the row the database refuses is lost
                        try:
                            self._bulk_insert([one])
                        except (OperationalError, InterfaceError):
                            raise
                        except DatabaseError as exc:
                            _dropped(1, f"the database refused request {one.request_id!r}: {exc}")
        except (OperationalError, InterfaceError) as exc:
            logger.warning("request-log spool %s not shipped yet (%s); retrying", path.name, exc)
            connections[self.using].close()
            return False
        metrics.request_log_rows_shipped(len(rows))
        return True

    def _gather(self) -> None:
        """Under self._cond, with rows queued: let more arrive for up to REQUEST_LOG_BATCH_SECONDS
        so that one statement carries them all, unless a request is waiting for its row or the
        process is exiting. Fewer, bigger writes cost less CPU, and the writer takes the GIL
        from the requests less often."""
        deadline = time.monotonic() + settings.REQUEST_LOG_BATCH_SECONDS
        while not self._closing and not any(entry.waited for entry in self._queue):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._queue) >= _BATCH_MAX_ROWS:
                return
            self._cond.wait(remaining)

    def _write_batch(self, batch: list[_Entry]) -> tuple[list[_Entry], bool]:
        """Write a group; return (the rows to retry later, whether the database was
        unreachable)."""
        try:
            # One statement, in autocommit: it commits or fails as a whole.
            self._insert([entry.fields for entry in batch])
        except (OperationalError, InterfaceError) as exc:
            logger.warning("request-log write of %d row(s) failed (%s); retrying", len(batch), exc)
            # A request waiting for a row that is not on disk gets the error now rather than
            # wait for the outage.
            for entry in batch:
                if entry.waited and entry.segment is None:
                    entry.finish(exc)
            return [e for e in batch if not (e.waited and e.segment is None)], True
        except DatabaseError as exc:
            if len(batch) > 1:
                logger.warning(
                    "request-log group of %d failed (%s); writing rows one by one", len(batch), exc
                )
            self._write_one_by_one(batch)
            return [], False
        except Exception as exc:  # a bug: say so loudly, do not spin on it
            logger.exception("request-log write of %d row(s) failed", len(batch))
            self._refused(batch, exc)
            return [], False
        for entry in batch:
            entry.finish()
        return [], False

    def _write_one_by_one(self, batch: list[_Entry]) -> None:
        for entry in batch:
            try:
                RequestLog(**entry.fields).save(force_insert=True, using=self.using)
            except Exception as exc:
                self._refused([entry], exc)
            else:
                entry.finish()

    def _refused(self, entries: list[_Entry], exc: BaseException) -> None:
        for entry in entries:
            if not entry.waited:
                _dropped(
                    1,
                    f"the database refused request {entry.fields.get('request_id')!r}: {exc}",
                )
            entry.finish(exc)

    def _insert(self, rows: list[dict]) -> None:
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            RequestLog.objects.using(self.using).bulk_create([RequestLog(**f) for f in rows])
            return
        values = [self._columns.values(fields) for fields in rows]
        for attempt in (1, 2):
            # The driver's connection directly: Django's cursor() would first run its health
            # check, a `SELECT 1` round trip per group. A connection the server dropped is
            # found by the write itself and replaced once instead.
            connection.ensure_connection()
            try:
                with connection.wrap_database_errors:
                    self._columns.send(connection.connection, values)
                return
            except (OperationalError, InterfaceError):
                connection.close()
                if attempt == 2:
                    raise
                logger.warning("request-log write lost its database connection; reconnecting")


def _held(count: int) -> None:
    metrics.request_log_rows_held(count)


def _spool_size(total_bytes: int) -> None:
    metrics.request_log_spool_bytes(total_bytes, settings.REQUEST_LOG_SPOOL_MAX_BYTES)


def _full_reason(limit: int, spool: Spool | None) -> str:
    if spool is None:
        return f"the queue holds {limit} rows (REQUEST_LOG_QUEUE_MAX_ROWS) and no spool is set"
    return (
        f"the queue holds {limit} rows (REQUEST_LOG_QUEUE_MAX_ROWS) and the spool is full "
        f"(REQUEST_LOG_SPOOL_MAX_BYTES) or cannot be written"
    )


def _read_records(path: Path) -> tuple[list[dict], int]:
    adopted = Adopted(path, os.open(path, os.O_RDONLY))
    try:
        return adopted.rows()
    finally:
        adopted.release()


# During an outage every request past the queue limit loses its row: one error line per
# reason every few seconds, with the count since the previous line, rather than one per request.
_DROP_LOG_INTERVAL = 5.0
_drop_lock = threading.Lock()
_drops_unreported: dict[str, int] = {}  # reason -> rows lost since its last line
_drops_logged_at: dict[str, float] = {}
_drops_pruned_at = 0.0


def _dropped(count: int, why: str) -> None:
    if count <= 0:
        return
    metrics.request_log_rows_dropped(count)
    now = time.monotonic()
    with _drop_lock:
        count += _drops_unreported.pop(why, 0)
        if now - _drops_logged_at.get(why, -_DROP_LOG_INTERVAL) < _DROP_LOG_INTERVAL:
            _drops_unreported[why] = count
            return
        _drops_logged_at[why] = now
        _forget_old_reasons(now)
    logger.error("%d request-log row(s) lost: %s", count, why)


def _forget_old_reasons(now: float) -> None:
    """Under _drop_lock, at most every _DROP_LOG_INTERVAL: forget when the reasons whose
    interval has passed were logged (such an entry throttles nothing). A refused row's reason
    names its request, so without this every refused row would stay in the dict for good."""
    global _drops_pruned_at
    if now - _drops_pruned_at < _DROP_LOG_INTERVAL:
        return
    _drops_pruned_at = now
    for why in [w for w, at in _drops_logged_at.items() if now - at >= _DROP_LOG_INTERVAL]:
        del _drops_logged_at[why]


def report_drops() -> None:
    """Log the losses still waiting for their line (the writer calls this after each write,
    so the last count of an outage is not held back)."""
    with _drop_lock:
        unreported = dict(_drops_unreported)
        _drops_unreported.clear()
        now = time.monotonic()
        for why in unreported:
            _drops_logged_at[why] = now
    for why, count in unreported.items():
        logger.error("%d request-log row(s) lost: %s", count, why)


class _Columns:
    """RequestLog's columns as the writer sends them: every concrete column but the generated
    id (so columns added later are written too), with the model's defaults."""

    def __init__(self):
        fields = [f for f in RequestLog._meta.concrete_fields if not f.primary_key]
        # Callers may name a foreign key by its field (`user`) or column (`user_id`).
        self._names = frozenset(f.name for f in fields) | frozenset(f.attname for f in fields)
        self._readers = [_reader(f) for f in fields]
        self._record_readers = [(f.attname, _reader(f, encode_json=False)) for f in fields]
        self._to_python = {f.attname: f.to_python for f in fields}
        table = f'"{RequestLog._meta.db_table}"'
        columns = ", ".join(f'"{f.column}"' for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        self._insert_sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        self._copy_sql = f"COPY {table} ({columns}) FROM STDIN"

    def check(self, fields: dict) -> None:
        # Once per request: the subset test builds no set (half the cost of the difference).
        if not self._names.issuperset(fields):
            unknown = fields.keys() - self._names
            raise TypeError(f"RequestLog has no field(s) {', '.join(sorted(unknown))}")

    def values(self, fields: dict) -> list:
        return [read(fields) for read in self._readers]

    def record(self, fields: dict) -> dict:
        """The row as a spool line: column attribute name -> value, JSON fields unencoded."""
        return {attname: read(fields) for attname, read in self._record_readers}

    def from_record(self, record: dict) -> RequestLog:
        """A spool line back as a row; columns the line lacks (added since) get defaults."""
        return RequestLog(
            **{
                attname: self._to_python[attname](value)
                for attname, value in record.items()
                if attname in self._to_python
            }
        )

    def send(self, raw_connection, rows: list[list]) -> None:
        import psycopg  # only PostgreSQL gets here

        if len(rows) == 1:
            # COPY takes two round trips; a lone row is one INSERT. A server-side-binding
            # cursor lets psycopg prepare it after a few calls (its prepare_threshold).
            with psycopg.Cursor(raw_connection) as cursor:
                cursor.execute(self._insert_sql, rows[0])
            return
        with raw_connection.cursor() as cursor, cursor.copy(self._copy_sql) as copy:
            for row in rows:
                copy.write_row(row)


def _reader(field, encode_json: bool = True):
    """A function reading `field`'s value from a dict of fields, as the database takes it
    (JSON fields encoded unless `encode_json` is false)."""
    name, attname = field.name, field.attname
    default = field.get_default
    if field.is_relation:

        def related(fields):
            if attname in fields:
                return fields[attname]
            value = fields.get(name)
            return None if value is None else value.pk

        return related
    if field.get_internal_type() == "JSONField" and encode_json:
        encoder = field.encoder

        def json_value(fields):
            value = fields[name] if name in fields else default()
            return None if value is None else json.dumps(value, cls=encoder)

        return json_value

    def plain(fields):
        return fields[name] if name in fields else default()

    return plain


_writer = RequestLogWriter()


def request_log_writer() -> RequestLogWriter:
    return _writer


def drain_at_exit() -> None:
    """Write what this process still holds (at exit; running it twice is harmless)."""
    _writer.close()


atexit.register(drain_at_exit)
_exit_finalizer_pid: int | None = None


def _drain_at_exit_of_this_process() -> None:
    """Also drain through multiprocessing's exit finalizers: a process started by
    multiprocessing (granian's workers) ends with `os._exit()`, which skips `atexit` but runs
    these first. Registered by the process that starts a writer thread, once: a child forked
    by multiprocessing starts with the finalizers cleared."""
    global _exit_finalizer_pid
    if _exit_finalizer_pid != os.getpid():
        _exit_finalizer_pid = os.getpid()
        multiprocessing.util.Finalize(None, drain_at_exit, exitpriority=10)


def _new_writer_after_fork() -> None:
    # A forked worker starts with no queue, no thread and free locks, whatever the parent's
    # threads were doing; the parent's rows (and its loss counts) are the parent's to report.
    global _writer, _drop_lock
    if _writer._spool is not None:
        _writer._spool.forget_after_fork()  # the parent's files stay the parent's
    _writer = RequestLogWriter()
    _drop_lock = threading.Lock()
    _drops_unreported.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_writer_after_fork)
