from decimal import Decimal

import factory
from django.utils import timezone

from analytics.choices import RequestStatus
from analytics.models import RequestLog


class RequestLogFactory(factory.django.DjangoModelFactory):
    """A successful gpt-4o-mini request served by `openai` a moment ago."""

    class Meta:
        model = RequestLog

    request_id = factory.Sequence(lambda n: f"req-{n:08d}")
    created_at = factory.LazyFunction(timezone.now)
    requested_model = "gpt-4o-mini"
    provider_id = "openai"
    model = "gpt-4o-mini"
    status = RequestStatus.SUCCESS
    http_status = 200
    attempts = 1
    prompt_tokens = 100
    completion_tokens = 20
    cost = Decimal("0.0000270000")
    baseline_cost = Decimal("0.0000300000")
    latency = 0.4
