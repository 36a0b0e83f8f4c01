"""The Redis cache backend answers like an empty cache while Redis is down (core/cache.py):
a real redis-server of the test's own, stopped and started again."""

import pytest

from core.cache import FailSoftRedisCache
from tests.stores import PrivateRedis


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def test_a_redis_outage_reads_as_an_empty_cache_with_one_line_each_way(redis, settings, caplog):
    settings.CACHE_RETRY_SECONDS = 0
    cache = FailSoftRedisCache(
        redis.url, {"OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}}
    )
    cache.set("k", "v")
    assert cache.get("k") == "v"
    with caplog.at_level("INFO", logger="core.snapshot"):
        # when: Redis goes away
        redis.stop()
        answers = [cache.get("k", "default") for _ in range(20)]
        assert answers == ["default"] * 20
        assert cache.add("k2", "v") is False
        assert cache.set("k3", "v") is None
        assert cache.get_many(["k", "k2"]) == {}
        with pytest.raises(ValueError):
            cache.incr("counter")
        # when: it is back (empty: it kept nothing)
        redis.start()
        cache.set("k", "again")
        assert cache.get("k") == "again"
    lines = [r.levelname for r in caplog.records if r.name == "core.snapshot"]
    assert lines == ["WARNING", "INFO"]


def test_while_down_redis_is_tried_at_most_every_retry_interval(redis, settings):
    settings.CACHE_RETRY_SECONDS = 3600
    cache = FailSoftRedisCache(redis.url, {})
    redis.stop()
    assert cache.get("k") is None
    failures = cache.outage.failures
    redis.start()
    # within the retry interval the cache does not even try: still "empty", no new failure
    assert cache.get("k", "default") == "default"
    assert cache.outage.failures == failures
