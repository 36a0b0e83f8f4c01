import threading
import time

import pytest

from accounts.principal import _PrincipalCache


def test_concurrent_misses_for_one_token_load_it_once():
    # given: eight request threads presenting the same token the cache does not hold
    cache = _PrincipalCache()
    calls = []
    start = threading.Barrier(8)

    def load(raw_token):
        calls.append(raw_token)
        time.sleep(0.05)  # a database round trip, long enough for the others to arrive
        return None, None

    def request():
        start.wait()
        cache.get("sk-aut-same-token", load)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one load, the other seven found its result
    assert calls == ["sk-aut-same-token"]


def test_different_tokens_each_load():
    cache = _PrincipalCache()
    calls = []

    def load(raw_token):
        calls.append(raw_token)
        return None, None

    cache.get("sk-aut-a", load)
    cache.get("sk-aut-b", load)
    cache.get("sk-aut-a", load)
    assert calls == ["sk-aut-a", "sk-aut-b"]


def test_a_token_is_trusted_no_longer_than_its_loader_says(settings):
    # given: a long cache lifetime, and one token that expires now and one that does not
    settings.PRINCIPAL_CACHE_SECONDS = 60
    cache = _PrincipalCache()
    calls = []

    def load(raw_token):
        calls.append(raw_token)
        return raw_token, 0.0 if raw_token.endswith("expiring") else None

    # when: each is presented twice
    for token in ("sk-aut-expiring", "sk-aut-expiring", "sk-aut-lasting", "sk-aut-lasting"):
        assert cache.get(token, load) == token
    # then: the expiring one is loaded again (and so refused once its key is gone)
    assert calls == ["sk-aut-expiring", "sk-aut-expiring", "sk-aut-lasting"]


def test_a_failed_load_caches_nothing_and_leaves_no_lock_behind():
    cache = _PrincipalCache()

    def database_down(token):
        raise ConnectionError("database unreachable")

    with pytest.raises(ConnectionError):
        cache.get("sk-aut-failing", load=database_down)
    assert cache._loading == {} and cache._entries == {}
    # and the next request loads again
    assert cache.get("sk-aut-failing", load=lambda token: ("principal", None)) == "principal"
