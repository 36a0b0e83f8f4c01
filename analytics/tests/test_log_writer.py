"""The request-log writer (analytics/log_writer.py): every row written exactly once, by the
background thread, in groups; committed before the request answers when asked; kept and retried
through a database outage; a refused row failing alone; nothing left behind at exit."""

import os
import threading
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from analytics import log_writer
from analytics.log_writer import RequestLogWriter, _Entry
from analytics.models import RequestLog
from analytics.services import request_log_record

pytestmark = pytest.mark.django_db(transaction=True)


def row(request_id: str, **overrides) -> dict:
    fields = {
        "request_id": request_id,
        "created_at": timezone.now(),
        "requested_model": "gpt-4o-mini",
        "provider_id": "openai",
        "model": "gpt-4o-mini",
        "status": "success",
        "http_status": 200,
        "attempts": 1,
        "attempts_detail": [{"provider": "openai", "outcome": "ok", "latency_ms": 1.5}],
        "prompt_tokens": 12,
        "completion_tokens": 7,
        "cost": Decimal("0.0000123456"),
        "baseline_cost": Decimal("0.0000200000"),
        "latency": 0.25,
        "flags": {"routing_policies": True, "cost_optimization": False},
    }
    fields.update(overrides)
    return fields


def _dropped() -> float:
    return REGISTRY.get_sample_value("auterity_request_log_dropped_total") or 0.0


@pytest.fixture
def writer():
    log_writer._drops_unreported.clear()  # loss lines are throttled per reason, process-wide
    log_writer._drops_logged_at.clear()
    # Without a spool: the in-memory behaviour, which is also what happens when the spool is
    # full or cannot be written (the spool's own tests: test_spool.py).
    writer = RequestLogWriter(spool_dir=None)
    yield writer
    writer.close(10)


def test_concurrent_writers_each_get_exactly_one_committed_row(writer):
    # given 24 threads writing at once through one writer, each waiting for its commit
    seen_after_return = {}
    errors = []
    start = threading.Barrier(24)

    def serve(n):
        try:
            start.wait()
            writer.write(row(f"conc-{n}"), wait=True)
            # committed before write() returned: another connection sees it already
            seen_after_return[n] = RequestLog.objects.filter(request_id=f"conc-{n}").exists()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=serve, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then
    assert errors == []
    assert all(seen_after_return.get(n) for n in range(24)), seen_after_return
    ids = sorted(RequestLog.objects.values_list("request_id", flat=True))
    assert ids == sorted(f"conc-{n}" for n in range(24))


def test_every_column_is_written_as_given():
    request_log_record(
        request_id="cols-1",
        requested_model="claude-haiku-4-5",
        provider_id="anthropic",
        model="claude-haiku-4-5",
        status="error",
        http_status=502,
        error_type="server_error",
        error_message="upstream said no",
        attempts=2,
        attempts_detail=[{"provider": "anthropic", "outcome": "server_error"}] * 2,
        prompt_tokens=0,
        completion_tokens=0,
        cost=Decimal(0),
        baseline_cost=Decimal("0.5"),
        latency=1.5,
        stream=True,
        flags={"intelligent_routing": True},
    )

    saved = RequestLog.objects.get(request_id="cols-1")
    assert (saved.status, saved.http_status, saved.error_type) == ("error", 502, "server_error")
    assert saved.attempts_detail == [{"provider": "anthropic", "outcome": "server_error"}] * 2
    assert saved.flags == {"intelligent_routing": True}
    assert saved.baseline_cost == Decimal("0.5")
    assert saved.stream is True
    assert saved.created_at is not None
    assert saved.api_key_name == ""  # model defaults fill what the caller left out


def test_a_refused_row_fails_alone_and_the_rest_of_its_group_is_written(writer):
    # given a row that already exists, and a group holding a duplicate of it
    writer.write(row("dup-1"), wait=True)
    group = [_Entry(row("grp-1")), _Entry(row("dup-1")), _Entry(row("grp-2"))]

    # when the group is written
    assert writer._write_batch(group) == ([], False)

    # then only the duplicate failed
    assert [e.done for e in group] == [True, False, True]
    assert isinstance(group[1].error, IntegrityError)
    assert RequestLog.objects.filter(request_id__in=["grp-1", "grp-2", "dup-1"]).count() == 3


def test_a_refused_row_raises_for_its_own_request():
    request_log_record(**row("same-id"))
    with pytest.raises(IntegrityError):
        request_log_record(**row("same-id"))
    assert RequestLog.objects.filter(request_id="same-id").count() == 1


def test_by_default_the_request_does_not_wait_for_its_row(settings):
    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock")
    settings.REQUEST_LOG_COMMIT_BEFORE_RESPONSE = False
    writer = log_writer.request_log_writer()
    # given another session holding the table so that no row can be written yet
    with _other_connection() as other, other.transaction():
        other.execute("LOCK TABLE request_log IN EXCLUSIVE MODE")
        # (in a thread: a request that did wait would wait for as long as the lock is held)
        request = threading.Thread(target=request_log_record, kwargs=row("bg-1"))
        request.start()
        request.join(1)

        # then the request's write returned at once, the row still waiting
        assert not request.is_alive()
        time.sleep(0.2)
        assert writer.pending() == 1
    # and once the table is free the thread writes it
    assert writer.flush(10)
    assert RequestLog.objects.filter(request_id="bg-1").exists()
    assert writer.pending() == 0


def test_rows_that_arrive_together_share_one_write(writer, monkeypatch):
    groups = []
    insert = writer._insert
    gate = threading.Event()

    def recording_insert(rows):
        groups.append(len(rows))
        gate.wait(10)
        insert(rows)

    monkeypatch.setattr(writer, "_insert", recording_insert)
    writer.write(row("grp-a"))  # taken by the thread, which waits at the gate
    while writer.pending() != 1 or not groups:
        time.sleep(0.01)
    for n in range(5):
        writer.write(row(f"grp-b{n}"))  # queued behind it
    gate.set()

    assert writer.flush(10)
    assert groups == [1, 5]
    assert RequestLog.objects.filter(request_id__startswith="grp-").count() == 6


def test_rows_gather_for_a_moment_unless_a_request_waits_for_its_own(writer, settings, monkeypatch):
    settings.REQUEST_LOG_BATCH_SECONDS = 0.5
    groups = []
    insert = writer._insert

    def recording_insert(rows):
        groups.append(sorted(r["request_id"] for r in rows))
        insert(rows)

    monkeypatch.setattr(writer, "_insert", recording_insert)
    # rows arriving within the gathering time go out in one statement
    for n in range(3):
        writer.write(row(f"gather-{n}"))
    assert writer.flush(10)
    assert groups == [["gather-0", "gather-1", "gather-2"]]

    # a request waiting for its row does not wait for the gathering time
    started = time.monotonic()
    writer.write(row("gather-waited"), wait=True)
    assert time.monotonic() - started < 0.4
    assert groups[-1] == ["gather-waited"]


def test_rows_are_kept_and_retried_while_the_database_is_unreachable(writer, monkeypatch):
    # given a database that refuses the first two connections
    monkeypatch.setattr(log_writer, "_RETRY_FIRST", 0.3)  # long enough to watch
    failures = []
    insert = writer._insert

    def flaky_insert(rows):
        if len(failures) < 2:
            failures.append(len(rows))
            raise OperationalError("connection refused")
        insert(rows)

    monkeypatch.setattr(writer, "_insert", flaky_insert)

    # when rows arrive, one of them from a request that waits for its commit
    writer.write(row("outage-1"))
    writer.write(row("outage-2"))
    with pytest.raises(OperationalError):
        writer.write(row("outage-waited"), wait=True)

    # meanwhile the rows held are visible to operators
    deadline = time.monotonic() + 10
    while (REGISTRY.get_sample_value("auterity_request_log_rows_held") or 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.005)

    # then the background rows are written once it is back; the waiting request got the error
    assert writer.flush(10)
    assert REGISTRY.get_sample_value("auterity_request_log_rows_held") == 0
    assert len(failures) == 2
    ids = set(RequestLog.objects.values_list("request_id", flat=True))
    assert {"outage-1", "outage-2"} <= ids
    assert "outage-waited" not in ids


def stalled(writer, monkeypatch, first_row: dict) -> threading.Event:
    """The writer thread takes `first_row` and waits in its write until the returned event is
    set (a database that hangs); rows queued meanwhile stay in the queue."""
    gate = threading.Event()
    insert = writer._insert

    def blocked_insert(rows):
        gate.wait(10)
        insert(rows)

    monkeypatch.setattr(writer, "_insert", blocked_insert)
    writer.write(first_row)
    while writer.pending() != 1 or writer._queue:
        time.sleep(0.01)
    return gate


def test_past_the_queue_limit_rows_are_dropped_and_counted(writer, monkeypatch, caplog):
    writer.max_rows = 2
    before = _dropped()
    gate = stalled(writer, monkeypatch, row("q-1"))
    writer.write(row("q-2"))
    writer.write(row("q-3"))  # the queue holds two
    writer.write(row("q-4"))  # dropped
    gate.set()

    assert writer.flush(10)
    assert set(RequestLog.objects.values_list("request_id", flat=True)) == {"q-1", "q-2", "q-3"}
    assert _dropped() == before + 1
    assert "1 request-log row(s) lost" in caplog.text


def test_an_outage_logs_its_losses_once_every_few_seconds_not_once_per_row(
    writer, monkeypatch, caplog
):
    writer.max_rows = 1
    before = _dropped()
    gate = stalled(writer, monkeypatch, row("burst-0"))
    writer.write(row("burst-1"))  # the queue holds one
    for n in range(2, 52):
        writer.write(row(f"burst-{n}"))  # 50 dropped

    lines = [r.getMessage() for r in caplog.records if "request-log row(s) lost" in r.message]
    assert lines == [
        "1 request-log row(s) lost: the queue holds 1 rows (REQUEST_LOG_QUEUE_MAX_ROWS) "
        "and no spool is set"
    ]
    assert _dropped() == before + 50
    # the rest of the count is logged once the writer gets going again
    gate.set()
    assert writer.flush(10)
    lines = [r.getMessage() for r in caplog.records if "request-log row(s) lost" in r.message]
    assert lines[1:] == [
        "49 request-log row(s) lost: the queue holds 1 rows (REQUEST_LOG_QUEUE_MAX_ROWS) "
        "and no spool is set"
    ]


def test_a_reason_naming_one_request_is_not_remembered_forever(writer, monkeypatch, caplog):
    # given a clock the test moves, and a refused row every second, each reason naming its row
    clock = [time.monotonic()]
    monkeypatch.setattr(log_writer, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    for n in range(100):
        log_writer._dropped(1, f"the database refused request 'gone-{n}': duplicate key")
        clock[0] += 1

    # then each got its line, and only the last few seconds' reasons are still held
    assert caplog.text.count("1 request-log row(s) lost: the database refused") == 100
    assert len(log_writer._drops_logged_at) < 20


def test_a_refused_background_row_is_counted_and_the_others_written(writer, caplog):
    before = _dropped()
    writer.write(row("bg-dup"), wait=True)
    writer.write(row("bg-dup"))
    writer.write(row("bg-after"))
    assert writer.flush(10)
    assert RequestLog.objects.filter(request_id="bg-dup").count() == 1
    assert RequestLog.objects.filter(request_id="bg-after").exists()
    assert _dropped() == before + 1
    assert "the database refused request 'bg-dup'" in caplog.text


def test_close_writes_what_is_queued_and_stops_the_thread(writer):
    for n in range(20):
        writer.write(row(f"close-{n}"))
    writer.close(10)
    assert RequestLog.objects.filter(request_id__startswith="close-").count() == 20
    assert not writer._thread.is_alive()
    # a later row starts it again
    writer.write(row("close-after"), wait=True)
    assert RequestLog.objects.filter(request_id="close-after").exists()


def test_close_gives_up_after_its_timeout_when_the_database_hangs(writer, monkeypatch, caplog):
    # given a write that hangs, and a row queued behind it
    gate = stalled(writer, monkeypatch, row("hung-1"))
    writer.write(row("hung-2"))
    # when the process exits with a 0.5 s drain
    started = time.monotonic()
    writer.close(0.5)
    # then it gives up after 0.5 s, not after waiting again for the thread, and says so
    assert time.monotonic() - started < 1.0
    assert "2 request-log row(s) lost: the process exited before they were written" in caplog.text
    gate.set()


def test_inside_a_transaction_the_row_belongs_to_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        request_log_record(**row("in-tx"))
        assert RequestLog.objects.filter(request_id="in-tx").exists()
        raise RuntimeError("roll back")
    assert not RequestLog.objects.filter(request_id="in-tx").exists()


def test_a_misspelt_field_is_refused_before_anything_is_written():
    with pytest.raises(TypeError, match="promt_tokens"):
        request_log_record(**row("typo-1", promt_tokens=3))
    assert not RequestLog.objects.filter(request_id="typo-1").exists()


def test_foreign_keys_by_field_or_column(django_user_model):
    user = django_user_model.objects.create_user("owner", password="pw-123456")
    request_log_record(**row("fk-col", user_id=user.pk))
    request_log_record(**row("fk-obj", user=user))
    assert set(RequestLog.objects.filter(user=user).values_list("request_id", flat=True)) == {
        "fk-col",
        "fk-obj",
    }


def test_a_connection_the_server_dropped_is_replaced_and_the_row_written(writer):
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    # given the writer threads' connections were killed by the server (restart, idle timeout)
    writer.write(row("before-drop"), wait=True)
    with _other_connection() as other:
        victims = other.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'INSERT INTO \"request_log\"%%'"
        ).fetchall()
        assert victims
        for (pid,) in victims:  # this writer's, and the process-wide one's if it has written
            other.execute("SELECT pg_terminate_backend(%s)", [pid])

    # when the next row is written
    writer.write(row("after-drop"), wait=True)

    # then it is there, written on a new connection
    assert RequestLog.objects.filter(request_id="after-drop").exists()


def _other_connection():
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    return psycopg.connect(**params, autocommit=True)


def test_a_forked_worker_does_not_inherit_a_held_loss_lock():
    # given the parent's loss-line lock held by one of its threads at the moment of the fork
    with log_writer._drop_lock:
        pid = os.fork()
        if pid == 0:  # the child: reporting a loss must not wait for a thread it does not have
            try:
                log_writer._dropped(1, "forked child")
            finally:
                os._exit(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the child hung on the lock it inherited")
