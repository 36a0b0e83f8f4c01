import threading
import time

import pytest
from django.db import OperationalError

from accounts.models import hash_key
from accounts.principal import MISS, _PrincipalCache
from core.snapshot import StoreUnavailable


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


class _Database:
    """A loader over a database that can be made unreachable."""

    def __init__(self):
        self.down = False
        self.calls = 0

    def load(self, raw_token):
        self.calls += 1
        if self.down:
            raise OperationalError("connection to server failed: Connection refused")
        return (None if raw_token.endswith("bad") else f"principal of {raw_token}"), None


def test_a_known_token_keeps_its_last_good_principal_while_the_database_is_down(settings):
    settings.PRINCIPAL_CACHE_SECONDS = 0  # every request would reload
    cache = _PrincipalCache()
    database = _Database()
    assert cache.get("sk-aut-known", database.load) == "principal of sk-aut-known"
    assert cache.get("sk-aut-known-bad", database.load) is None
    database.down = True
    # then: the last good answers, and the database is not tried on every request
    for _ in range(50):
        assert cache.get("sk-aut-known", database.load) == "principal of sk-aut-known"
        assert cache.get("sk-aut-known-bad", database.load) is None
    assert database.calls <= 4
    assert cache.outage.failing
    # a token never seen cannot be checked: a clear error (503), not a 500
    with pytest.raises(StoreUnavailable):
        cache.get("sk-aut-never-seen", database.load)
    # back: reloaded (a revocation made meanwhile would apply now)
    database.down = False
    cache._entries[hash_key("sk-aut-known")].retry_at = 0
    assert cache.get("sk-aut-known", database.load) == "principal of sk-aut-known"
    assert not cache.outage.failing


def test_the_last_good_principal_is_bounded_by_the_stale_limit_and_its_own_expiry(settings):
    settings.PRINCIPAL_CACHE_SECONDS = 0
    settings.PRINCIPAL_STALE_MAX_SECONDS = 0  # no staleness allowed at all
    cache = _PrincipalCache()
    database = _Database()
    cache.get("sk-aut-known", database.load)
    database.down = True
    with pytest.raises(StoreUnavailable):
        cache.get("sk-aut-known", database.load)
    # an expiring key is never served past its expiry, whatever the stale limit
    settings.PRINCIPAL_STALE_MAX_SECONDS = 3600
    database.down = False
    cache.get("sk-aut-expiring", lambda token: ("expiring principal", 0.0))
    database.down = True
    with pytest.raises(StoreUnavailable):
        cache.get("sk-aut-expiring", database.load)


def test_peek_answers_from_memory_and_reloads_a_stale_entry_in_the_background(settings):
    settings.SNAPSHOT_REFRESH = "background"
    settings.PRINCIPAL_CACHE_SECONDS = 0
    cache = _PrincipalCache()
    database = _Database()
    assert cache.peek("sk-aut-known") is MISS
    cache.get("sk-aut-known", database.load)
    cache.get("sk-aut-known-bad", database.load)
    calls = database.calls
    main_thread = threading.current_thread()
    loaded_in = []

    def load(raw_token):
        loaded_in.append(threading.current_thread())
        return database.load(raw_token)

    cache._entries[hash_key("sk-aut-known")].load = load
    # when: peeked while stale
    assert cache.peek("sk-aut-known") == "principal of sk-aut-known"
    assert cache.peek("sk-aut-known-bad") is None
    # then: the reload happens, in the refresher thread, never in the caller's
    deadline = time.monotonic() + 30
    while not loaded_in:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert main_thread not in loaded_in
    assert database.calls > calls


@pytest.mark.django_db
def test_a_process_starting_loads_every_active_key_so_an_outage_refuses_none_it_never_saw(
    django_user_model, django_assert_num_queries, monkeypatch
):
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.utils import timezone

    from accounts import principal as module
    from accounts.services import api_key_create

    # given keys this process has never resolved: two active, one revoked, one expired
    user = django_user_model.objects.create_user("warm", password="x")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    _, first = api_key_create(user=user, name="first", scopes=["ai:execute"])
    _, second = api_key_create(user=user, name="second", scopes=["routing:manage"])
    revoked, revoked_raw = api_key_create(user=user, name="revoked", scopes=["ai:execute"])
    revoked.revoked_at = timezone.now()
    revoked.save()
    _, expired_raw = api_key_create(
        user=user, name="old", scopes=["ai:execute"], expires_at=timezone.now() - timedelta(1)
    )
    cache = _PrincipalCache()
    monkeypatch.setattr(module, "principal_cache", cache)

    # when the process warms up: two queries whatever the number of keys
    with django_assert_num_queries(2):
        assert module.principals_warm() == 2

    # then the active keys answer from memory (no database needed), with their groups and
    # scopes, and the others are not there to answer
    with django_assert_num_queries(0):
        assert cache.peek(first).groups == frozenset({"enterprise"})
        assert cache.peek(second).scopes == frozenset({"routing:manage", "routing:view"})
        assert cache.peek(revoked_raw) is MISS
        assert cache.peek(expired_raw) is MISS
    # and a second warm-up keeps what the process resolved since (it may be newer)
    assert module.principals_warm() == 0


def test_warming_up_with_the_database_down_is_a_store_outage(monkeypatch):
    from accounts import principal as module

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(module.ApiKey.objects, "select_related", down)
    with pytest.raises(StoreUnavailable):
        module.principals_warm()
