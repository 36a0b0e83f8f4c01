"""Last good state (core/snapshot.py): loaded once, reloaded in the background, kept while its
store is down, one log line per outage."""

import threading
import time

import pytest
from django.db import OperationalError
from prometheus_client import REGISTRY

from core.snapshot import LastGoodSnapshot, StoreUnavailable


class _Store:
    """A loader whose store can be made unreachable; it notes the thread of every load."""

    def __init__(self):
        self.value = 1
        self.down = False
        self.loads = []

    def load(self, current):
        self.loads.append(threading.current_thread().name)
        if self.down:
            raise OperationalError("connection to server failed: Connection refused")
        return self.value


def _stale_seconds(name):
    return REGISTRY.get_sample_value("auterity_snapshot_stale_seconds", {"snapshot": name})


def _eventually(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


def test_once_warm_reads_never_load_in_the_callers_thread(settings):
    settings.SNAPSHOT_REFRESH = "background"
    store = _Store()
    snapshot = LastGoodSnapshot("test-background", store.load, lambda: 0.01)
    assert snapshot.warm() == 1
    # when: the store changes and readers keep reading
    store.value = 2
    _eventually(lambda: snapshot.get() == 2)
    # then: every load after the first ran in the refresher thread
    assert store.loads[0] == threading.current_thread().name
    assert set(store.loads[1:]) == {"snapshot-refresher"}


def test_a_failing_reload_keeps_the_last_good_value_with_one_line_per_transition(settings, caplog):
    settings.SNAPSHOT_REFRESH = "background"
    store = _Store()
    snapshot = LastGoodSnapshot("test-outage", store.load, lambda: 0.01)
    snapshot.warm()
    with caplog.at_level("INFO", logger="core.snapshot"):
        # given: the store goes away for many reloads
        store.down = True
        store.value = 2
        failed_before = len(store.loads)
        _eventually(lambda: len(store.loads) > failed_before + 5)
        # then: readers get the last good value, the gauge says how long it has been stale
        assert snapshot.get() == 1
        assert snapshot.outage.failing
        _eventually(lambda: (_stale_seconds("test-outage") or 0) > 0)
        # when: it is back
        store.down = False
        _eventually(lambda: snapshot.get() == 2)
    lines = [r for r in caplog.records if r.name == "core.snapshot"]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"]
    assert "test-outage" in lines[0].getMessage() and "Connection refused" in lines[0].getMessage()
    assert not lines[0].exc_info  # no traceback
    assert "work again" in lines[1].getMessage()
    assert _stale_seconds("test-outage") == 0


def test_never_loaded_while_the_store_is_down_is_store_unavailable_and_not_a_load_per_call(
    settings,
):
    settings.SNAPSHOT_REFRESH = "background"
    store = _Store()
    store.down = True
    snapshot = LastGoodSnapshot("test-unloaded", store.load, lambda: 60)
    for _ in range(20):
        with pytest.raises(StoreUnavailable, match="test-unloaded cannot be loaded now"):
            snapshot.get()
    assert len(store.loads) == 1  # retried at most once a second, not per request
    assert snapshot.peek() is None  # never any I/O: it starts a background load instead
    store.down = False
    _eventually(lambda: snapshot.peek() == 1)


def test_inline_mode_reloads_in_the_reader_and_still_keeps_the_last_good_value(settings):
    settings.SNAPSHOT_REFRESH = "inline"
    store = _Store()
    snapshot = LastGoodSnapshot("test-inline", store.load, lambda: 0)
    assert snapshot.get() == 1
    store.value, store.down = 2, True
    assert snapshot.get() == 1
    store.down = False
    assert snapshot.get() == 2
    assert set(store.loads) == {threading.current_thread().name}
