"""Request-log group commit: every row written exactly once, committed before its writer
returns, and a refused row failing alone (analytics/log_writer.py)."""

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

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


def test_concurrent_writers_each_get_exactly_one_committed_row():
    # given 24 threads writing at once through one writer
    writer = RequestLogWriter()
    seen_after_return = {}
    errors = []
    start = threading.Barrier(24)

    def serve(n):
        try:
            start.wait()
            writer.write(row(f"conc-{n}"))
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


def test_a_refused_row_fails_alone_and_the_rest_of_its_group_is_written():
    # given a row that already exists, and a group holding a duplicate of it
    writer = RequestLogWriter()
    writer.write(row("dup-1"))
    group = [_Entry(row("grp-1")), _Entry(row("dup-1")), _Entry(row("grp-2"))]

    # when the group is written
    writer._write_batch(group)

    # then only the duplicate failed
    assert [e.done for e in group] == [True, False, True]
    assert isinstance(group[1].error, IntegrityError)
    assert RequestLog.objects.filter(request_id__in=["grp-1", "grp-2", "dup-1"]).count() == 3


def test_a_refused_row_raises_for_its_own_request():
    request_log_record(**row("same-id"))
    with pytest.raises(IntegrityError):
        request_log_record(**row("same-id"))
    assert RequestLog.objects.filter(request_id="same-id").count() == 1


def test_inside_a_transaction_the_row_belongs_to_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        request_log_record(**row("in-tx"))
        assert RequestLog.objects.filter(request_id="in-tx").exists()
        raise RuntimeError("roll back")
    assert not RequestLog.objects.filter(request_id="in-tx").exists()


def test_one_insert_per_row_when_group_commit_is_off(settings):
    settings.REQUEST_LOG_GROUP_COMMIT = False
    request_log_record(**row("plain-1"))
    assert RequestLog.objects.get(request_id="plain-1").prompt_tokens == 12


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


def test_a_connection_the_server_dropped_is_replaced_and_the_row_written():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    # given this thread's connection was killed by the server (restart, idle timeout)
    connection.ensure_connection()
    victim = connection.connection.info.backend_pid
    with _other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [victim])

    # when a row is written on it
    request_log_record(**row("after-drop"))

    # then the row is there, on a new connection
    assert RequestLog.objects.filter(request_id="after-drop").exists()
    assert connection.connection.info.backend_pid != victim


def _other_connection():
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    return psycopg.connect(**params, autocommit=True)
