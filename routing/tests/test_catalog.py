"""The per-process catalogue snapshot (routing/catalog.py over core/snapshot.py)."""

import pytest
from django.core.cache import cache
from django.db import OperationalError

from core.snapshot import StoreUnavailable
from providers.models import Provider
from routing import catalog

pytestmark = pytest.mark.django_db


def _break_the_database(monkeypatch):
    """Every catalogue build fails as it does when PostgreSQL is unreachable."""

    def unreachable(version):
        raise OperationalError("connection refused")

    monkeypatch.setattr(catalog, "catalogue_build", unreachable)


def test_a_change_elsewhere_is_picked_up_at_the_next_check(settings, demo_catalogue):
    settings.ROUTING_SNAPSHOT_CHECK_SECONDS = 0
    first = catalog.catalogue_get()
    # given: another process saved a provider (it bumps the shared version)
    Provider.objects.filter(pk="openai").update(status="down")
    cache.set(catalog.VERSION_KEY, "changed-elsewhere", timeout=None)
    # then
    current = catalog.catalogue_get()
    assert current.version == "changed-elsewhere"
    assert current.snapshot.providers["openai"].status == "down"
    assert first.snapshot.providers["openai"].status != "down"


def test_the_last_good_catalogue_serves_while_the_database_is_unreachable(
    settings, demo_catalogue, monkeypatch, caplog
):
    settings.ROUTING_SNAPSHOT_CHECK_SECONDS = 0
    good = catalog.catalogue_get()
    _break_the_database(monkeypatch)
    cache.set(catalog.VERSION_KEY, "changed-during-the-outage", timeout=None)
    # when: requests keep asking while every rebuild fails
    with caplog.at_level("INFO", logger="core.snapshot"):
        answers = [catalog.catalogue_get() for _ in range(50)]
    # then: the last good catalogue, and one line about it, not one per request
    assert all(answer is good for answer in answers)
    lines = [r for r in caplog.records if r.name == "core.snapshot"]
    assert len(lines) == 1 and lines[0].levelname == "WARNING"
    assert "catalogue" in lines[0].getMessage() and "last good" in lines[0].getMessage()
    assert catalog.catalogue_outage().failing
    # when the database is back: the change arrives, with one line saying so
    monkeypatch.undo()
    with caplog.at_level("INFO", logger="core.snapshot"):
        current = catalog.catalogue_get()
    assert current.version == "changed-during-the-outage"
    assert not catalog.catalogue_outage().failing
    assert "work again" in caplog.records[-1].getMessage()


def test_a_catalogue_never_loaded_is_a_clear_error_while_the_database_is_down(
    demo_catalogue, monkeypatch
):
    _break_the_database(monkeypatch)
    with pytest.raises(StoreUnavailable, match="catalogue cannot be loaded now"):
        catalog.catalogue_get()


def test_without_a_shared_version_the_catalogue_is_rebuilt_from_the_database_now_and_then(
    settings, demo_catalogue, monkeypatch
):
    # given: a cache that keeps nothing (what core/cache.py answers while Redis is down)
    settings.ROUTING_SNAPSHOT_CHECK_SECONDS = 0
    monkeypatch.setattr(catalog, "_shared_version", lambda: None)
    first = catalog.catalogue_get()
    assert first.version.startswith("unversioned:")
    # within UNVERSIONED_REBUILD_SECONDS: the same catalogue, no rebuild per check
    assert catalog.catalogue_get() is first
    # past it: rebuilt from the database, so changes made elsewhere arrive
    Provider.objects.filter(pk="openai").update(status="down")
    monkeypatch.setattr(catalog, "UNVERSIONED_REBUILD_SECONDS", 0)
    rebuilt = catalog.catalogue_get()
    assert rebuilt is not first
    assert rebuilt.snapshot.providers["openai"].status == "down"
