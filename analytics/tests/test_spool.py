"""The request log's spool (analytics/spool.py through analytics/log_writer.py): every row on
disk before its request answers, shipped from there when the database cannot take it, adopted
by another process after a kill -9, never written twice, dropped only when the spool is full."""

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from prometheus_client import REGISTRY

from analytics import log_writer
from analytics.log_writer import RequestLogWriter
from analytics.models import RequestLog
from analytics.spool import SUFFIX, Adopted, database_folder, spool_rows
from analytics.tasks import ship_request_log_spool_task
from analytics.tests.test_log_writer import row
from tests.subprocess_env import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _dropped() -> float:
    return REGISTRY.get_sample_value("auterity_request_log_dropped_total") or 0.0


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*/*{SUFFIX}"))


def _ids() -> list[str]:
    return list(RequestLog.objects.order_by("request_id").values_list("request_id", flat=True))


class _Outage:
    """The writer's two ways to the database, made unreachable while `down` is set."""

    def __init__(self, writer, monkeypatch):
        self.down = False
        insert, bulk = writer._insert, writer._bulk_insert

        def guarded(write):
            def call(rows):
                if self.down:
                    raise OperationalError("connection to server failed: Connection refused")
                return write(rows)

            return call

        monkeypatch.setattr(writer, "_insert", guarded(insert))
        monkeypatch.setattr(writer, "_bulk_insert", guarded(bulk))
        monkeypatch.setattr(log_writer, "_RETRY_FIRST", 0.05)


@pytest.fixture
def spool_dir(tmp_path):
    return tmp_path / "spool"


@pytest.fixture
def writer(spool_dir):
    writer = RequestLogWriter(spool_dir=spool_dir)
    yield writer
    writer.close(10)


def test_a_row_is_in_the_spool_before_write_returns_and_gone_once_committed(writer, spool_dir):
    # given a database that does not take the row yet (the writer thread is held up)
    gate = threading.Event()
    insert = writer._insert
    writer._insert = lambda rows: (gate.wait(10), insert(rows))
    # when a request hands over its row
    writer.write(row("on-disk-1"))
    # then it is on disk already, before any commit
    [path] = _files(spool_dir)
    assert [r["request_id"] for r in spool_rows(path)] == ["on-disk-1"]
    gate.set()
    assert writer.flush(10)
    assert _ids() == ["on-disk-1"]
    # a clean exit deletes the file whose rows are all committed
    writer.close(10)
    assert _files(spool_dir) == []


def test_rows_of_an_outage_are_shipped_from_disk_exactly_once(
    writer, spool_dir, monkeypatch, settings
):
    settings.REQUEST_LOG_SPOOL_FSYNC_SECONDS = 0
    outage = _Outage(writer, monkeypatch)
    writer.write(row("before"), wait=True)
    outage.down = True
    # when requests keep coming while the database is unreachable
    for n in range(30):
        writer.write(row(f"outage-{n}"))
    # a request waiting for its row is answered: the row is safe on disk
    writer.write(row("outage-waited"), wait=True)
    deadline = time.monotonic() + 10
    while writer.pending():  # the writer hands the rows over to their files
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert writer.spooled() >= 31
    # and the writer made them durable against a machine crash too (fsync, in batches)
    while any(segment.synced < segment.bytes for segment in writer._spool.segments):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # then, when the database is back, every row is there once
    outage.down = False
    assert writer.flush(10)
    expected = ["before", "outage-waited", *(f"outage-{n}" for n in range(30))]
    assert sorted(_ids()) == sorted(expected)
    assert writer.spooled() == 0


def test_past_the_memory_limit_rows_wait_on_disk_instead_of_being_dropped(writer, monkeypatch):
    writer.max_rows = 2
    before = _dropped()
    outage = _Outage(writer, monkeypatch)
    outage.down = True
    for n in range(50):
        writer.write(row(f"mem-{n}"))
    outage.down = False
    assert writer.flush(10)
    assert len(_ids()) == 50
    assert _dropped() == before


def test_rows_are_dropped_and_counted_only_when_the_spool_and_memory_are_full(
    writer, monkeypatch, settings
):
    settings.REQUEST_LOG_SPOOL_MAX_BYTES = 3000  # a few rows
    writer.max_rows = 5
    before = _dropped()
    outage = _Outage(writer, monkeypatch)
    outage.down = True
    for n in range(40):
        writer.write(row(f"full-{n}"))
    outage.down = False
    assert writer.flush(10)
    kept = len(_ids())
    assert 5 <= kept < 40  # what fitted on disk or in memory
    assert _dropped() - before == 40 - kept  # and exactly what is missing was counted


_CHILD = textwrap.dedent(
    """
    import os, sys, django
    django.setup()
    from analytics.log_writer import RequestLogWriter
    from analytics.tests.test_log_writer import row
    writer = RequestLogWriter(spool_dir=sys.argv[1])
    for n in range(40):
        writer.write(row(f"killed-{n}"))
    print("written", flush=True)
    sys.stdin.read()  # until killed
    """
)


def _killed_writer(spool_dir: Path, table_locked: bool = True) -> None:
    """A process writes 40 rows while request_log is locked (its writes wait), and is killed
    with SIGKILL: no exit handler runs."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(spool_dir)],
        cwd=ROOT,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout.readline().strip() == b"written"
    child.kill()
    child.wait()


def _locked_request_log():
    """A second connection holding an exclusive lock on request_log until closed."""
    import psycopg

    other = psycopg.connect(**connection.get_connection_params())
    other.execute("LOCK TABLE request_log IN ACCESS EXCLUSIVE MODE")
    return other


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_killed_process_rows_are_adopted_by_the_next_one_without_duplicates(spool_dir):
    # given a process killed while request_log was locked: its rows were only on disk
    lock = _locked_request_log()
    try:
        _killed_writer(spool_dir)
    finally:
        lock.close()
    [orphan] = _files(spool_dir)
    assert len(list(spool_rows(orphan))) == 40
    # and one of its rows made it to the database before the kill (say)
    RequestLog.objects.create(**row("killed-0"))
    # when two processes look for orphans at the same moment
    adopters = [RequestLogWriter(spool_dir=spool_dir) for _ in range(2)]
    results = []

    def adopt(adopter):
        try:
            results.append(adopter.ship_orphans())
        finally:
            connection.close()  # this thread's own

    threads = [threading.Thread(target=adopt, args=(w,)) for w in adopters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for adopter in adopters:
        adopter.close(10)
    # then one of them shipped the file, every row is there exactly once, the file is gone
    assert sorted(results) == [0, 40]
    assert sorted(_ids()) == sorted(f"killed-{n}" for n in range(40))
    assert _files(spool_dir) == []


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_live_writers_files_are_never_adopted(writer, spool_dir):
    lock = _locked_request_log()
    try:
        writer.write(row("alive-1"))
        [path] = _files(spool_dir)
        assert Adopted.take(path) is None  # its owner holds the lock
        assert RequestLogWriter(spool_dir=spool_dir).ship_orphans() == 0
    finally:
        lock.close()
    assert writer.flush(10)
    assert _ids() == ["alive-1"]


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_celery_task_ships_orphans(spool_dir, settings):
    settings.REQUEST_LOG_SPOOL_DIR = str(spool_dir)
    lock = _locked_request_log()
    try:
        _killed_writer(spool_dir)
    finally:
        lock.close()
    assert ship_request_log_spool_task() == 40
    assert len(_ids()) == 40
    assert _files(spool_dir) == []


def test_a_torn_last_line_is_counted_lost_and_the_rest_shipped(spool_dir):
    folder = spool_dir / database_folder(connection.settings_dict, connection.vendor)
    folder.mkdir(parents=True)
    orphan = folder / f"dead-1-1-1{SUFFIX}"  # a process that died in the middle of a line
    orphan.write_bytes(
        b'{"request_id":"torn-ok","created_at":"2026-01-01T00:00:00+00:00","requested_model":'
        b'"m","status":"success","http_status":200}\n{"request_id":"torn-b'
    )
    before = _dropped()
    adopter = RequestLogWriter(spool_dir=spool_dir)
    assert adopter.ship_orphans() == 1
    assert _ids() == ["torn-ok"]
    assert _dropped() == before + 1
