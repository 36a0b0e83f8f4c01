"""Observed output lengths from the request log, for the cost guard's expected cost.

`output_estimates_refresh()` (run by `refresh_output_estimates_task` under beat) computes,
over the successful requests of the last ROUTING_OUTPUT_ESTIMATES_WINDOW_HOURS:

- per requested model and caller (user, API key): the ROUTING_OUTPUT_ESTIMATES_PERCENTILE of
  visible output tokens (completion - reasoning);
- per requested model, the same over every caller;
- per serving model: the percentile of reasoning (thinking) tokens;

each only for groups with at least ROUTING_OUTPUT_ESTIMATES_MIN_SAMPLES requests, and hands
them to routing (routing/output_estimates.py), which serves them to every process from the
cache. Percentiles are nearest-rank (PostgreSQL's percentile_disc; computed in Python on
other databases), so every figure is a length some request really had.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, F
from django.utils import timezone

from routing.output_estimates import output_estimates_publish

from .choices import RequestStatus
from .models import RequestLog
from .selectors import PercentileDisc

_CALLER = ("requested_model", "user_id", "api_key_name")


def _nearest_rank(values: list[int], fraction: float) -> int:
    values.sort()
    return values[max(1, math.ceil(fraction * len(values))) - 1]


def _groups(
    rows, keys: tuple[str, ...], value, fraction: float, min_samples: int, in_database=None
) -> dict:
    """{key tuple: percentile of `value`} for the groups of `rows` by `keys` that have at least
    `min_samples` rows. In SQL on PostgreSQL (percentile_disc), else in Python."""
    if in_database is None:
        in_database = connection.vendor == "postgresql"
    if in_database:
        grouped = (
            rows.values(*keys)
            .annotate(n=Count("id"), p=PercentileDisc(value, fraction))
            .filter(n__gte=min_samples)
            .values_list(*keys, "p")
        )
        return {tuple(row[:-1]): int(row[-1]) for row in grouped}
    values: dict[tuple, list[int]] = defaultdict(list)
    for *key, v in rows.annotate(v=value).values_list(*keys, "v").iterator(chunk_size=5000):
        values[tuple(key)].append(v)
    return {
        key: _nearest_rank(vs, fraction) for key, vs in values.items() if len(vs) >= min_samples
    }


def output_lengths_observed(*, now: datetime | None = None) -> tuple[dict, dict, dict]:
    """(by caller, by model, thinking by serving model), as output_estimates_publish takes
    them."""
    now = now or timezone.now()
    since = now - timedelta(hours=settings.ROUTING_OUTPUT_ESTIMATES_WINDOW_HOURS)
    fraction = settings.ROUTING_OUTPUT_ESTIMATES_PERCENTILE / 100
    min_samples = settings.ROUTING_OUTPUT_ESTIMATES_MIN_SAMPLES
    rows = RequestLog.objects.filter(
        created_at__gte=since, created_at__lt=now, status=RequestStatus.SUCCESS
    ).exclude(model="")
    visible = F("completion_tokens") - F("reasoning_tokens")
    by_caller = {
        (model, "" if user is None else str(user), key): tokens
        for (model, user, key), tokens in _groups(
            rows, _CALLER, visible, fraction, min_samples
        ).items()
    }
    by_model = {
        model: tokens
        for (model,), tokens in _groups(
            rows, ("requested_model",), visible, fraction, min_samples
        ).items()
    }
    thinking = {
        model: tokens
        for (model,), tokens in _groups(
            rows, ("model",), F("reasoning_tokens"), fraction, min_samples
        ).items()
    }
    return by_caller, by_model, thinking


def output_estimates_refresh(*, now: datetime | None = None) -> dict:
    """Recompute the observed lengths and publish them to every gateway process. Idempotent
    (it only reads the log); returns how many groups each figure has."""
    by_caller, by_model, thinking = output_lengths_observed(now=now)
    version = output_estimates_publish(by_caller, by_model, thinking)
    return {
        "version": version,
        "callers": len(by_caller),
        "models": len(by_model),
        "thinking_models": len(thinking),
    }
