"""Per-caller abuse limits: requests per minute and hour, tokens per minute, spend budgets.

Windows are fixed (minute 0-59 s, hour :00-:59, budget day/month in UTC), like the Kong
rate-limiting plugin the seed configures: a counter per caller and window, named so that the
next window is simply another counter. Counters live in one store shared by every worker
process:

- Redis (`RedisCounterStore`) when the default cache is Redis (production): one pipelined
  round trip of INCRBY/EXPIRE per request.
- The database (`DatabaseCounterStore`) otherwise: one atomic `INSERT ... ON CONFLICT DO UPDATE
  ... RETURNING` per request, on SQLite and PostgreSQL alike. Django's file and database cache
  backends are not used for counting because their `incr` is a read-then-write that loses
  counts between processes.

`admit()` runs once per gateway request before any provider is called; it counts the request
and, in the same round trip, reads the key's tokens-this-minute and spend-this-period counters
that `usage_record()` adds to after each request. Nothing sums the request log.

If the store is unreachable the request is let through and the error logged (limits protect
against abuse; they should not turn a Redis hiccup into an outage).
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.snapshot import OutageLog, refresher

from .choices import BudgetPeriod

logger = logging.getLogger(__name__)

# Spend is counted in integer nano-dollars so Redis INCRBY and a bigint column can hold it.
NANO_USD = Decimal(10**9)
_WINDOW_SECONDS = {"minute": 60, "hour": 3600}


@dataclass(frozen=True)
class KeyLimits:
    """A caller's own limits. For request limits None means the settings' default and 0 none;
    for tokens per minute and budget None (or 0 tokens) means none."""

    per_minute: int | None = None
    per_hour: int | None = None
    tokens_per_minute: int | None = None
    budget_usd: Decimal | None = None
    budget_period: str = BudgetPeriod.MONTH

    @classmethod
    def from_api_key(cls, api_key) -> KeyLimits:
        return cls(
            per_minute=api_key.rate_limit_per_minute,
            per_hour=api_key.rate_limit_per_hour,
            tokens_per_minute=api_key.tokens_per_minute,
            budget_usd=api_key.budget_usd,
            budget_period=api_key.budget_period,
        )


DEFAULT_LIMITS = KeyLimits()


class LimitExceeded(Exception):
    """The caller is over a limit; the request must not reach any provider.

    `type`/`code` follow OpenAI's error vocabulary (`requests`/`tokens` +
    `rate_limit_exceeded`, `insufficient_quota`), so SDK users can branch on them.
    """

    def __init__(self, message, *, type, code, retry_after, headers, status=429):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.retry_after = retry_after
        self.headers = headers


@dataclass(frozen=True)
class _Window:
    name: str
    limit: int
    used: int
    reset_s: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


# --- counter stores ----------------------------------------------------------------------------


class DatabaseCounterStore:
    """Counters in the `usage_counters` table, one atomic upsert per call."""

    CLEANUP_EVERY_S = 60.0

    def __init__(self):
        self._cleaned_at = 0.0
        self._lock = threading.Lock()

    def add(self, ops: list[tuple[str, int, int]]) -> dict[str, int]:
        """Add `delta` to each `(key, delta, ttl_seconds)` and return every new value."""
        now = datetime.now(UTC)
        ops = sorted(ops)  # one lock order for every writer: concurrent upserts cannot deadlock
        adapt = connection.ops.adapt_datetimefield_value
        rows = ", ".join(["(%s, %s, %s)"] * len(ops))
        params = []
        for key, delta, ttl in ops:
            params += [key, delta, adapt(now + timedelta(seconds=ttl))]
        sql = (
            f"INSERT INTO usage_counters (key, value, expires_at) VALUES {rows} "
            "ON CONFLICT (key) DO UPDATE SET value = usage_counters.value + excluded.value "
            "RETURNING key, value"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            values = dict(cursor.fetchall())
        self._maybe_clean(now)
        return values

    def _maybe_clean(self, now: datetime) -> None:
        mono = time.monotonic()
        if mono - self._cleaned_at < self.CLEANUP_EVERY_S or not self._lock.acquire(False):
            return
        try:
            self._cleaned_at = mono
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM usage_counters WHERE expires_at < %s",
                    [connection.ops.adapt_datetimefield_value(now)],
                )
        finally:
            self._lock.release()


class RedisCounterStore:
    """Counters in Redis: INCRBY + EXPIRE for every key, pipelined into one round trip."""

    PREFIX = "auterity:limits:"

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def add(self, ops: list[tuple[str, int, int]]) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for key, delta, ttl in ops:
            pipe.incrby(self.PREFIX + key, delta)
            # Keys are per window, so refreshing the expiry on every call still lets them go.
            pipe.expire(self.PREFIX + key, ttl)
        results = pipe.execute()
        return {key: int(results[2 * i]) for i, (key, _, _) in enumerate(ops)}


def _redis_url() -> str:
    if settings.RATE_LIMIT_REDIS_URL:
        return settings.RATE_LIMIT_REDIS_URL
    location = settings.CACHES["default"].get("LOCATION", "")
    return location[0] if isinstance(location, list | tuple) else location


@lru_cache(maxsize=1)
def counter_store() -> DatabaseCounterStore | RedisCounterStore:
    """The store named by RATE_LIMIT_STORE (`auto`: Redis when the default cache is Redis)."""
    choice = settings.RATE_LIMIT_STORE
    if choice == "auto":
        backend = settings.CACHES["default"]["BACKEND"]
        choice = "redis" if backend.endswith("RedisCache") else "database"
    if choice == "redis":
        return RedisCounterStore(_redis_url())
    if choice == "database":
        return DatabaseCounterStore()
    raise ValueError(f"RATE_LIMIT_STORE must be auto, redis or database, not {choice!r}")


def counter_store_reset() -> None:
    """Forget the chosen store (tests, or after the settings changed)."""
    counter_store.cache_clear()


# --- keys and windows ------------------------------------------------------------------------


def caller_key(api_key_id: int | None, user_id: int | None) -> str:
    """Whose counters: the API key's when one is used, else the user's."""
    return f"key:{api_key_id}" if api_key_id else f"user:{user_id}"


def _effective(own: int | None, default: int) -> int:
    return default if own is None else own


def _budget_window(period: str, now: float) -> tuple[str, int]:
    """The budget period's id and the seconds until it ends."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == BudgetPeriod.DAY:
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        return f"d{start:%Y%m%d}", max(1, int((end - moment).total_seconds()))
    days = calendar.monthrange(moment.year, moment.month)[1]
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=days)
    return f"m{start:%Y%m}", max(1, int((end - moment).total_seconds()))


def _tokens_key(who: str, now: float) -> str:
    return f"tpm:{who}:{int(now // 60)}"


def _spend_key(who: str, period: str, now: float) -> tuple[str, int]:
    period_id, seconds_left = _budget_window(period, now)
    return f"spend:{who}:{period_id}", seconds_left


def _rate_headers(windows: list[_Window]) -> dict[str, str]:
    """`X-RateLimit-*` for the tightest window, plus Kong-style per-window headers."""
    if not windows:
        return {}
    tightest = min(windows, key=lambda w: (w.remaining, w.reset_s))
    headers = {
        "X-RateLimit-Limit": str(tightest.limit),
        "X-RateLimit-Remaining": str(tightest.remaining),
        "X-RateLimit-Reset": str(tightest.reset_s),
    }
    for window in windows:
        suffix = window.name.capitalize()
        headers[f"X-RateLimit-Limit-{suffix}"] = str(window.limit)
        headers[f"X-RateLimit-Remaining-{suffix}"] = str(window.remaining)
    return headers


# --- the checks ------------------------------------------------------------------------------


def admit(principal, *, estimated_tokens: int = 0, now: float | None = None) -> dict[str, str]:
    """Count one request for `principal` and check every limit it has.

    Returns the rate-limit headers for the response, or raises LimitExceeded (with the headers
    and Retry-After to send). A refused request still counts towards the request windows, as
    with Kong: hammering while limited does not shorten the wait.
    """
    now = time.time() if now is None else now
    limits: KeyLimits = principal.limits or DEFAULT_LIMITS
    who = principal.caller_key
    per_window = {
        "minute": _effective(limits.per_minute, settings.RATE_LIMIT_PER_MINUTE),
        "hour": _effective(limits.per_hour, settings.RATE_LIMIT_PER_HOUR),
    }
    ops: list[tuple[str, int, int]] = []
    window_keys = {}
    for name, limit in per_window.items():
        if limit:
            seconds = _WINDOW_SECONDS[name]
            window_keys[name] = f"rl:{who}:{name[0]}:{int(now // seconds)}"
            ops.append((window_keys[name], 1, 2 * seconds))
    tokens_key = _tokens_key(who, now) if limits.tokens_per_minute else None
    if tokens_key:
        ops.append((tokens_key, 0, 120))
    spend_key = None
    if limits.budget_usd is not None:
        spend_key, budget_left_s = _spend_key(who, limits.budget_period, now)
        ops.append((spend_key, 0, budget_left_s + 3600))
    if not ops:
        return {}
    values = _counted(ops)
    if values is None:
        return {}

    windows = [
        _Window(
            name,
            per_window[name],
            values.get(key, 0),
            _WINDOW_SECONDS[name] - int(now) % _WINDOW_SECONDS[name],
        )
        for name, key in window_keys.items()
    ]
    headers = _rate_headers(windows)
    over = [w for w in windows if w.used > w.limit]
    if over:
        # Retrying before the longest exceeded window ends would only be refused again.
        worst = max(over, key=lambda w: w.reset_s)
        raise LimitExceeded(
            f"Rate limit reached: {worst.limit} requests per {worst.name} for this "
            f"{'API key' if principal.api_key_id else 'user'}. Try again in {worst.reset_s} s.",
            type="requests",
            code="rate_limit_exceeded",
            retry_after=worst.reset_s,
            headers=headers,
        )
    if tokens_key:
        used = values.get(tokens_key, 0)
        limit = limits.tokens_per_minute
        if used + estimated_tokens > limit:
            reset = 60 - int(now) % 60
            too_big = estimated_tokens > limit
            raise LimitExceeded(
                f"This request needs about {estimated_tokens} input tokens, more than the key's "
                f"limit of {limit} tokens per minute."
                if too_big
                else f"Token rate limit reached: {used} of {limit} tokens per minute used. "
                f"Try again in {reset} s.",
                type="tokens",
                code="rate_limit_exceeded",
                retry_after=reset,
                headers={
                    **headers,
                    "X-RateLimit-Limit-Tokens": str(limit),
                    "X-RateLimit-Remaining-Tokens": str(max(0, limit - used)),
                    **({"x-should-retry": "false"} if too_big else {}),
                },
            )
    if spend_key:
        spent = Decimal(values.get(spend_key, 0)) / NANO_USD
        if spent >= limits.budget_usd:
            raise LimitExceeded(
                f"Budget exceeded: this API key has spent ${spent:.4f} of its "
                f"${limits.budget_usd.normalize():f} budget per {limits.budget_period}. "
                f"It resets in {budget_left_s} s; raise budget_usd to continue now.",
                type="insufficient_quota",
                code="budget_exceeded",
                retry_after=budget_left_s,
                # Retrying soon cannot succeed: tell the OpenAI SDKs not to.
                headers={**headers, "x-should-retry": "false"},
            )
    return headers


# While the counters' store (Redis, or the database) is unreachable the limits fail open: one
# warning when it goes, one line when it is back (core/snapshot.py's OutageLog), not a
# traceback per request.
_store_outage = OutageLog("rate_limits", meanwhile="letting requests through unchecked")
_STORE_OUTAGES = (
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InterfaceError,
    OSError,
)


def _counted(ops: list[tuple[str, int, int]]) -> dict[str, int] | None:
    """`counter_store().add(ops)`, or None when the store cannot answer (fail open)."""
    try:
        values = counter_store().add(ops)
    except _STORE_OUTAGES as exc:
        _store_outage.failed(exc)
        refresher.watch(_store_outage)
        return None
    except Exception:
        logger.exception("rate-limit store failed; letting the request through unchecked")
        return None
    if _store_outage.failing:
        _store_outage.succeeded()
    return values


def usage_record(principal, *, tokens: int, cost: Decimal, now: float | None = None) -> None:
    """Add a finished request's tokens and cost to the caller's minute and budget counters."""
    limits: KeyLimits = principal.limits or DEFAULT_LIMITS
    now = time.time() if now is None else now
    who = principal.caller_key
    ops = []
    if limits.tokens_per_minute and tokens:
        ops.append((_tokens_key(who, now), int(tokens), 120))
    if limits.budget_usd is not None and cost:
        spend_key, seconds_left = _spend_key(who, limits.budget_period, now)
        nano_usd = int((Decimal(cost) * NANO_USD).to_integral_value())
        ops.append((spend_key, nano_usd, seconds_left + 3600))
    if not ops:
        return
    _counted(ops)


def api_key_spend(api_key, *, now: float | None = None) -> Decimal:
    """What a key has spent in its current budget period (USD), read from its counter."""
    spend_key, seconds_left = _spend_key(
        caller_key(api_key.pk, api_key.user_id),
        api_key.budget_period,
        time.time() if now is None else now,
    )
    values = counter_store().add([(spend_key, 0, seconds_left + 3600)])
    return Decimal(values.get(spend_key, 0)) / NANO_USD


def window_hit(bucket: str, *, limit: int, seconds: int, now: float | None = None):
    """Count one event in a plain fixed window (e.g. login attempts per client address).

    Returns `(allowed, retry_after_s)`; fails open like `admit()`.
    """
    now = time.time() if now is None else now
    key = f"rl:{bucket}:{seconds}:{int(now // seconds)}"
    values = _counted([(key, 1, 2 * seconds)])
    if values is None:
        return True, 0
    used = values[key]
    return used <= limit, seconds - int(now) % seconds
