"""The observed output lengths the cost guard expects (routing/engine/expected.py), per process.

The request log belongs to analytics, which routing must not import, so the figures travel
the other way: analytics computes them off the request path (`refresh_output_estimates_task`
under beat, every ROUTING_OUTPUT_ESTIMATES_INTERVAL_SECONDS) and hands them to
`output_estimates_publish()`, which stores them in the shared cache under one key that
routing owns. Each process reads that key at most every
ROUTING_OUTPUT_ESTIMATES_CHECK_SECONDS and otherwise serves its in-memory copy, so a request
costs a dictionary lookup, never a query. While the cache is unreachable or empty the last
copy (or the defaults: ROUTING_EXPECTED_OUTPUT_DEFAULT and the catalogue's thinking tokens)
keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import MappingProxyType

from django.conf import settings
from django.core.cache import cache

from routing.engine import OutputEstimates

logger = logging.getLogger(__name__)

CACHE_KEY = "auterity:output-estimates"


def output_estimates_publish(
    by_caller: dict[tuple[str, str, str], int],
    by_model: dict[str, int],
    thinking: dict[str, int],
) -> str:
    """Make new observed lengths the ones every process uses (within the check interval).
    Returns the version stored."""
    version = uuid.uuid4().hex
    cache.set(
        CACHE_KEY,
        {
            "version": version,
            "by_caller": [[*key, tokens] for key, tokens in by_caller.items()],
            "by_model": by_model,
            "thinking": thinking,
        },
        timeout=None,
    )
    _holder.invalidate()
    return version


def _build(data: dict | None) -> OutputEstimates:
    default = settings.ROUTING_EXPECTED_OUTPUT_DEFAULT
    if not data or "by_caller" not in data:
        return OutputEstimates(default_output=default)
    return OutputEstimates(
        by_caller=MappingProxyType(
            {(model, user, key): int(tokens) for model, user, key, tokens in data["by_caller"]}
        ),
        by_model=MappingProxyType({m: int(t) for m, t in data["by_model"].items()}),
        thinking=MappingProxyType({m: int(t) for m, t in data["thinking"].items()}),
        default_output=default,
        version=data["version"],
    )


class _EstimatesHolder:
    def __init__(self):
        self._lock = threading.Lock()
        self._current: OutputEstimates | None = None
        self._checked_at = 0.0

    def get(self) -> OutputEstimates:
        now = time.monotonic()
        current = self._current
        if (
            current is not None
            and now - self._checked_at < settings.ROUTING_OUTPUT_ESTIMATES_CHECK_SECONDS
        ):
            return current
        with self._lock:
            latest = self._current
            if latest is not None and latest is not current:
                return latest  # another thread just refreshed it
            try:
                data = cache.get(CACHE_KEY)
            except Exception:
                # The cache is down: keep what this process knows, ask again next interval.
                logger.warning("output estimates: cache unreachable, keeping the last ones")
                data = None if current is None else {"version": current.version}
            if current is None or (data or {}).get("version", "") != current.version:
                self._current = _build(data)
            self._checked_at = now
            return self._current

    def invalidate(self) -> None:
        with self._lock:
            self._current = None


_holder = _EstimatesHolder()


def output_estimates_get() -> OutputEstimates:
    """The observed output lengths this process routes with."""
    return _holder.get()


def output_estimates_reset() -> None:
    """Forget this process's copy (tests; the next call reads the cache again)."""
    _holder.invalidate()
