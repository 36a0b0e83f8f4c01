"""The request log is history: deleting a policy or a user does not touch its rows (no scan,
no update of millions of rows), and they stay readable by name (issue 14: deleting a policy
took 12 s)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import RequestLog, RoutingAnalytics
from analytics.services import analytics_rollup
from analytics.tests.test_log_writer import row
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(django_user_model):
    user = django_user_model.objects.create_user("caller", password="pw-123456")
    policy = RoutingPolicy.objects.create(name="Cheap first", conditions={}, actions={})
    created = timezone.now() - timedelta(minutes=10)
    for n in range(3):
        RequestLog.objects.create(
            **row(f"hist-{n}", created_at=created, user=user, policy=policy),
            policy_name=policy.name,
        )
    return user, policy


def _touches_request_log(queries) -> list[str]:
    return [q["sql"] for q in queries if "request_log" in q["sql"]]


def test_deleting_a_policy_leaves_the_request_log_alone_and_readable(logged, admin_client):
    _, policy = logged
    policy_id = policy.pk
    with CaptureQueriesContext(connection) as queries:
        policy.delete()
    assert _touches_request_log(queries.captured_queries) == []
    rows = RequestLog.objects.filter(request_id__startswith="hist-")
    assert {(r.policy_id, r.policy_name) for r in rows} == {(policy_id, "Cheap first")}
    # the rollup keeps the deleted policy's key, with no policy to point at
    analytics_rollup()
    [rollup] = RoutingAnalytics.objects.filter(policy_key=policy_id)
    assert rollup.policy_id is None and rollup.request_count == 3
    # and the admin still shows the rows
    some = rows.first()
    assert admin_client.get(f"/admin/analytics/requestlog/{some.pk}/change/").status_code == 200
    assert admin_client.get("/admin/analytics/requestlog/").status_code == 200


def test_deleting_a_user_leaves_the_request_log_alone(logged):
    user, _ = logged
    with CaptureQueriesContext(connection) as queries:
        user.delete()
    assert _touches_request_log(queries.captured_queries) == []
    assert RequestLog.objects.filter(request_id__startswith="hist-").count() == 3
