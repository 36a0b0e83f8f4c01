"""The Redis cache backend, answering like an empty cache while Redis is unreachable.

Django's RedisCache raises on every call while Redis is down, and the cache sits under hot
paths: waffle reads every flag through it, the catalogue reads its version key from it. An
outage of a cache must cost speed, not requests: `FailSoftRedisCache` turns a connection error
or a timeout into the answer of an empty cache (`get` -> default, `add`/`set` -> not stored,
`incr` -> ValueError as for a missing key), logs one line when Redis goes away and one when it
is back (core/snapshot.py's OutageLog), and then tries Redis again at most every
CACHE_RETRY_SECONDS instead of on every call. What each user of the cache does meanwhile is in
docs/deployment.md ("Outages"). Socket timeouts (CACHE_SOCKET_TIMEOUT_SECONDS) keep a Redis
that stopped answering from holding a request for long.

Other errors (a wrong password, a command Redis refuses) still raise: they are not outages.
So do `delete`, `delete_many` and `clear` during an outage: they invalidate, and a caller that
believed an invalidation happened would leave a stale value to be served once Redis is back
(waffle's flag cache after a rollback, say); such callers say the cache could not be cleared.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .snapshot import OutageLog, refresher

_OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


def _fail_soft(empty_answer):
    """Wrap a cache method: while Redis is unreachable, return `empty_answer(*args, **kwargs)`."""

    def wrap(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            if time.monotonic() < self._down_until:
                return empty_answer(*args, **kwargs)
            try:
                result = method(self, *args, **kwargs)
            except _OUTAGE_ERRORS as exc:
                self._down_until = time.monotonic() + settings.CACHE_RETRY_SECONDS
                self.outage.failed(exc)
                refresher.watch(self.outage)  # keeps its stale-seconds gauge current
                return empty_answer(*args, **kwargs)
            if self.outage.failing:
                self.outage.succeeded()
            return result

        return wrapper

    return wrap


def _missing_key(*args, **kwargs):
    raise ValueError("Key not found (the cache is unreachable)")


def _default(key, default=None, *args, **kwargs):
    return default


class FailSoftRedisCache(RedisCache):
    """Django's RedisCache that degrades to an empty cache during a Redis outage."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._down_until = 0.0
        self.outage = OutageLog("cache", meanwhile="answering as an empty cache")

    get = _fail_soft(_default)(RedisCache.get)
    add = _fail_soft(lambda *a, **k: False)(RedisCache.add)
    set = _fail_soft(lambda *a, **k: None)(RedisCache.set)
    touch = _fail_soft(lambda *a, **k: False)(RedisCache.touch)
    has_key = _fail_soft(lambda *a, **k: False)(RedisCache.has_key)
    incr = _fail_soft(_missing_key)(RedisCache.incr)
    get_many = _fail_soft(lambda *a, **k: {})(RedisCache.get_many)
    set_many = _fail_soft(lambda keys, *a, **k: list(keys))(RedisCache.set_many)
