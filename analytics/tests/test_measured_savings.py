"""Measured savings: the routing_policies flag's routed cohort against its control cohort, per
requested model, with a 95 % interval; next to the list-price figure in the summary API."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from analytics.selectors import measured_savings

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db


def seed(rng, model, routed, n, mean):
    for _ in range(n):
        RequestLogFactory(
            requested_model=model,
            cost=Decimal(f"{max(rng.gauss(mean, mean / 10), 0):.10f}"),
            flags={"routing_policies": routed},
            created_at=timezone.now() - timedelta(minutes=5),
        )


def test_the_saving_is_measured_per_model_and_its_interval_holds_the_truth():
    # given: per model, the routed cohort costs 30 % less than the control; the two cohorts
    # ask for the models in very different proportions (a naive mean would mislead)
    rng = random.Random(7)
    seed(rng, "gpt-4o", True, 300, 0.007)
    seed(rng, "gpt-4o", False, 40, 0.010)
    seed(rng, "gpt-4o-mini", True, 60, 0.0007)
    seed(rng, "gpt-4o-mini", False, 300, 0.001)
    # when
    now = timezone.now()
    figures = measured_savings(now - timedelta(hours=1), now)
    # then
    assert figures["routed_requests"] == 360 and figures["control_requests"] == 340
    assert figures["coverage"] == 1.0
    assert figures["ci95_low_percent"] < 30 < figures["ci95_high_percent"]
    assert figures["savings_percent"] == pytest.approx(30, abs=3)
    assert figures["ci95_high_percent"] - figures["ci95_low_percent"] < 10
    # whereas the plain means compare a gpt-4o-heavy cohort with a mini-heavy one
    naive = 1 - (300 * 0.007 + 60 * 0.0007) / 360 / ((40 * 0.010 + 300 * 0.001) / 340)
    assert naive < -0.5


def test_without_a_control_cohort_there_is_no_measured_saving():
    seed(random.Random(1), "gpt-4o", True, 30, 0.01)
    now = timezone.now()
    figures = measured_savings(now - timedelta(hours=1), now)
    assert figures["savings_percent"] is None
    assert "no control cohort" in figures["note"]


def test_the_summary_api_says_which_saving_is_which(django_user_model):
    rng = random.Random(3)
    seed(rng, "gpt-4o", True, 30, 0.008)
    seed(rng, "gpt-4o", False, 30, 0.010)
    user = django_user_model.objects.create_user("viewer", password="pw-123456")
    _, key = api_key_create(user=user, name="v", scopes=["routing:view"])
    response = APIClient().get(
        "/api/routing/analytics/summary/", headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["savings_basis"].startswith("list prices")
    measured = body["measured_savings"]
    assert measured["basis"].startswith("measured")
    assert measured["routed_requests"] == 30 and measured["control_requests"] == 30
    assert (
        measured["ci95_low_percent"] < measured["savings_percent"] < measured["ci95_high_percent"]
    )
    filtered = APIClient().get(
        "/api/routing/analytics/summary/?provider=openai",
        headers={"authorization": f"Bearer {key}"},
    )
    assert filtered.json()["measured_savings"] is None
