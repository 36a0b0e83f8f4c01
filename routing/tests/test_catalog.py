"""The per-process catalogue snapshot (routing/catalog.py)."""

import threading

import pytest

from routing import catalog

pytestmark = pytest.mark.django_db


class _InvalidatedWhileWaiting:
    """The holder's lock, as a thread finds it when a local save's invalidate() took it first:
    by the time the thread holds it, the catalogue has been dropped."""

    def __init__(self, holder):
        self._holder = holder
        self._lock = threading.Lock()

    def __enter__(self):
        self._holder._catalogue = None  # what invalidate() does while this thread waits
        return self._lock.__enter__()

    def __exit__(self, *exc_info):
        return self._lock.__exit__(*exc_info)


def test_a_check_that_waited_while_the_catalogue_was_invalidated_rebuilds_it(settings):
    # given: a catalogue due for its version check
    settings.ROUTING_SNAPSHOT_CHECK_SECONDS = 0
    holder = catalog._CatalogueHolder()
    first = holder.get()
    # when: the request's check waits on the lock while a local save invalidates the catalogue
    holder._lock = _InvalidatedWhileWaiting(holder)
    got = holder.get()
    # then: the request gets a catalogue (the same version: nothing else changed), not None
    assert isinstance(got, catalog.Catalogue)
    assert got.version == first.version
