"""The per-process catalogue snapshot (routing/catalog.py)."""

import threading
import time

import pytest
from django.db import connection

from routing import catalog

pytestmark = pytest.mark.django_db


def test_a_check_that_waited_while_the_catalogue_was_invalidated_rebuilds_it(settings):
    # given: a catalogue due for its version check
    settings.ROUTING_SNAPSHOT_CHECK_SECONDS = 0
    holder = catalog._CatalogueHolder()
    first = holder.get()
    got = []

    def read():
        try:
            got.append(holder.get())
        finally:
            connection.close()  # this thread's own connection

    # when: a request's check waits on the lock while a local save invalidates the catalogue
    with holder._lock:
        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.2)  # let the reader take its look at the old catalogue and block
        holder._catalogue = None  # what invalidate() does, once it holds the lock
    reader.join(timeout=10)
    # then: the request gets a catalogue, not None
    assert isinstance(got[0], catalog.Catalogue)
    assert got[0].version == first.version
