"""Last good state: hot-path values loaded from a store, refreshed off the request path, kept
serving while the store is down.

The gateway reads policies, providers, prices (the catalogue), feature flags and callers
(principals) on every request. None of these reads may wait on PostgreSQL or Redis, and none may
fail because one of them is briefly away. `LastGoodSnapshot` holds one such value:

- `warm()` loads it the first time, in the caller's thread (process start; a test).
- `get()` returns it from memory, with no I/O, once loaded. A background thread (one per
  process, shared by every snapshot) reloads it every `interval()` seconds; the loader may
  return the value it was given when nothing changed.
- A reload that fails keeps the last good value: `get()` goes on answering with it. The first
  failure logs one warning line, the recovery one info line (how long it lasted, how many
  reloads failed); nothing in between, whatever the request rate. While it lasts,
  `auterity_snapshot_stale_seconds{snapshot=...}` says for how long (an alert rule fires past
  a minute, deploy/prometheus/alerts.yml), and `auterity_snapshot_refresh_failures_total`
  counts the failed reloads.
- Before any load succeeded there is nothing to serve: `get()` tries to load in the caller's
  thread (at most once per `_RETRY_UNLOADED_S`) and raises `StoreUnavailable` when it cannot, a
  clear 503 for the caller rather than a 500.

`Refresher` is the background thread; `OutageLog` the one-line-per-transition reporting, also
used by keyed caches (accounts/principal.py) and the Redis cache backend (core/cache.py).
docs/deployment.md ("Outages") says what each store's outage does to each snapshot.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings
from django.db import connections
from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A snapshot never loaded retries in the caller's thread at most this often.
_RETRY_UNLOADED_S = 1.0

SNAPSHOT_STALE = Gauge(
    "auterity_snapshot_stale_seconds",
    "How long this process has been serving a snapshot (catalogue, flags, principals, ...) "
    "whose reload fails because its store is unreachable; 0 while reloads succeed. The worst "
    "living worker's value.",
    ["snapshot"],
    multiprocess_mode="livemax",
)
SNAPSHOT_FAILURES = Counter(
    "auterity_snapshot_refresh_failures_total",
    "Reloads of a snapshot that failed (the last good value kept serving).",
    ["snapshot"],
)


class StoreUnavailable(Exception):
    """A value was needed that this process never loaded, and its store is unreachable now.
    Callers answer 503 with the message (it names what is missing, not the store's error)."""

    def __init__(self, what: str, cause: BaseException | None = None):
        super().__init__(f"{what} cannot be loaded now: its data store is unreachable")
        self.what = what
        self.cause = cause


class OutageLog:
    """Reports the failures of one named thing (a snapshot, a store) by transition: one warning
    when it starts failing, one info line when it works again, and the stale-seconds gauge.
    Thread-safe; `failed()`/`succeeded()` are cheap when nothing changes."""

    def __init__(self, name: str, meanwhile: str = "serving the last good state"):
        self.name = name
        self.meanwhile = meanwhile  # what the process does while it fails, for the log line
        self._lock = threading.Lock()
        self.failing_since: float | None = None  # monotonic time of the first failure
        self.failures = 0
        self._gauge = SNAPSHOT_STALE.labels(name)
        self._counter = SNAPSHOT_FAILURES.labels(name)

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def stale_seconds(self, now: float | None = None) -> float:
        since = self.failing_since
        return 0.0 if since is None else max(0.0, (now or time.monotonic()) - since)

    def failed(self, exc: BaseException) -> None:
        self._counter.inc()
        with self._lock:
            self.failures += 1
            first = self.failing_since is None
            if first:
                self.failing_since = time.monotonic()
        if first:
            # No traceback: the cause is the store, and the next lines would all be the same.
            logger.warning(
                "%s: reload failed (%s: %s); %s until it works again",
                self.name,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                self.meanwhile,
            )
        self.report()

    def succeeded(self) -> None:
        if self.failing_since is None:
            return
        with self._lock:
            since, failures = self.failing_since, self.failures
            self.failing_since, self.failures = None, 0
        if since is not None:
            logger.info(
                "%s: reloads work again after %.1f s (%d failed meanwhile)",
                self.name,
                time.monotonic() - since,
                failures,
            )
        self._gauge.set(0)

    def report(self) -> None:
        """Write the stale-seconds gauge (the refresher calls this every tick)."""
        self._gauge.set(round(self.stale_seconds(), 1))


class Refresher:
    """One daemon thread per process running every snapshot's scheduled reloads and the
    keyed reloads callers ask for (`submit`), one at a time. Started on first use and again
    in a forked child (threads do not survive a fork)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, LastGoodSnapshot]] = []  # (due time, tie-break, snapshot)
        self._jobs: dict[object, Callable[[], None]] = {}  # keyed one-off reloads, deduplicated
        self._watched: list[OutageLog] = []
        self._pid: int | None = None
        self._seq = 0

    def schedule(self, snapshot: LastGoodSnapshot, delay: float) -> None:
        with self._cond:
            self._ensure_thread()
            self._seq += 1
            heapq.heappush(self._due, (time.monotonic() + delay, self._seq, snapshot))
            self._cond.notify()

    def submit(self, key: object, job: Callable[[], None]) -> None:
        """Run `job` soon in the background, unless a job with the same key is waiting."""
        with self._cond:
            self._ensure_thread()
            if key not in self._jobs:
                self._jobs[key] = job
                self._cond.notify()

    def watch(self, outage: OutageLog) -> None:
        """Refresh `outage`'s gauge every tick (a keyed cache has no schedule of its own)."""
        with self._cond:
            if outage not in self._watched:
                self._watched.append(outage)

    def pending_jobs(self) -> int:
        with self._cond:
            return len(self._jobs)

    def _ensure_thread(self) -> None:
        # Under self._cond.
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="snapshot-refresher", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._jobs:
                        key = next(iter(self._jobs))
                        task = self._jobs.pop(key)
                        break
                    if self._due and self._due[0][0] <= now:
                        _, _, snapshot = heapq.heappop(self._due)
                        task = snapshot.refresh_scheduled
                        break
                    wait = self._due[0][0] - now if self._due else 1.0
                    self._cond.wait(min(wait, 1.0))
                    for outage in self._watched:
                        outage.report()
            try:
                task()
            except Exception:  # a bug in a loader: say so, keep the thread alive
                logger.exception("snapshot refresher: a reload raised")
            finally:
                # A connection the store broke (or older than CONN_MAX_AGE) is not reused.
                for connection in connections.all(initialized_only=True):
                    connection.close_if_unusable_or_obsolete()

    def close_connections(self, timeout: float = 10.0) -> None:
        """Have the thread close its database connections (before a test database is dropped)
        and wait for it; it opens new ones at its next reload."""
        with self._cond:
            if self._pid != os.getpid():
                return  # no thread in this process
        done = threading.Event()

        def close():
            connections.close_all()
            done.set()

        self.submit("close-connections", close)
        done.wait(timeout)


refresher = Refresher()


def _refresher_after_fork() -> None:
    # The same object (modules hold it by name), fresh inside: no thread, free locks.
    refresher.__init__()
    for snapshot in list(_snapshots):
        # The parent's refresher thread may have held the lock at the fork.
        snapshot._lock = threading.Lock()
        snapshot._scheduled = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_refresher_after_fork)

_snapshots: list[LastGoodSnapshot] = []


def _in_background() -> bool:
    """SNAPSHOT_REFRESH: `background` (the servers) or `inline` (the tests: a reload in another
    thread would not see a test's uncommitted rows; docs/configuration.md)."""
    return settings.SNAPSHOT_REFRESH == "background"


class LastGoodSnapshot(Generic[T]):
    """A value from a store, kept in memory (see the module docstring).

    `load(current)` builds the value (current is the last good one, or None): it may return
    `current` itself when its source did not change. `interval()` gives the seconds between
    background reloads, read each time so a test's settings apply at once.
    """

    def __init__(self, name: str, load: Callable[[T | None], T], interval: Callable[[], float]):
        self.name = name
        self._load = load
        self._interval = interval
        self._lock = threading.Lock()  # one load at a time
        self._value: T | None = None
        self._loaded_at = 0.0  # monotonic time of the last successful load
        self._inline_due = 0.0  # SNAPSHOT_REFRESH=inline: when a reader reloads it next
        self._unloaded_failed_at = float("-inf")
        self._last_error: BaseException | None = None
        self._scheduled = False
        self.outage = OutageLog(name)
        _snapshots.append(self)

    # --- readers ------------------------------------------------------------------------------

    def get(self) -> T:
        """The value, from memory once loaded (no I/O); loads it in this thread the first time.
        Raises StoreUnavailable if it was never loaded and cannot be now."""
        value = self._value
        if value is None:
            return self.warm()
        if not _in_background():
            return self._refresh_inline(value)
        if not self._scheduled:
            self._schedule(self._interval())
        return value

    def _refresh_inline(self, value: T) -> T:
        """SNAPSHOT_REFRESH=inline: the reader reloads a due value itself (one reader at a
        time; the others keep the current value), still keeping it when the reload fails."""
        if time.monotonic() < self._inline_due:
            return value
        if not self._lock.acquire(blocking=False):
            return value
        try:
            if time.monotonic() >= self._inline_due:
                # After a failure: again in one interval, not on every request of the outage.
                self._inline_due = time.monotonic() + self._interval()
                self._reload()
            return self._value if self._value is not None else value
        finally:
            self._lock.release()

    def peek(self) -> T | None:
        """The value if loaded, else None (and a background load is started); never any I/O
        (SNAPSHOT_REFRESH=inline: loads in this thread, as `get()` does, or None)."""
        value = self._value
        if not _in_background():
            if value is not None:
                return self._refresh_inline(value)
            try:
                return self.warm()
            except StoreUnavailable:
                return None
        if value is None or not self._scheduled:
            self._schedule(0.0 if value is None else self._interval())
        return value

    def warm(self) -> T:
        """Load now in this thread unless already loaded (the first, blocking load)."""
        with self._lock:
            if self._value is not None:
                return self._value
            if time.monotonic() - self._unloaded_failed_at < _RETRY_UNLOADED_S:
                raise StoreUnavailable(self.name, self._last_error)
            error = self._reload()
            if error is not None:
                self._unloaded_failed_at = time.monotonic()
                raise StoreUnavailable(self.name, error) from error
            value = self._value
        if _in_background():
            self._schedule(self._interval())
        return value

    def age(self) -> float | None:
        """Seconds since the last successful load, or None if never loaded."""
        return None if self._value is None else time.monotonic() - self._loaded_at

    # --- writers ------------------------------------------------------------------------------

    def refresh_now(self) -> T | None:
        """Reload in this thread (after a change made by this process). A failure keeps the
        last good value (reported like a background failure) and returns it."""
        with self._lock:
            self._reload()  # a failure is reported there; the background thread tries again
            return self._value

    def reset(self) -> None:
        """Forget the value: the next `get()` loads it in its own thread (tests)."""
        with self._lock:
            self._value = None
            self._unloaded_failed_at = float("-inf")

    # --- the background thread ----------------------------------------------------------------

    def refresh_scheduled(self) -> None:
        self._scheduled = False
        with self._lock:
            self._reload()  # a failure is reported there; the last good value keeps serving
        self._schedule(self._interval())

    def _schedule(self, delay: float) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        refresher.schedule(self, max(0.0, delay))

    def _reload(self) -> Exception | None:
        """Load (under self._lock); return the error if it failed, after reporting it."""
        try:
            value = self._load(self._value)
        except Exception as exc:
            self._last_error = exc
            self.outage.failed(exc)
            return exc
        self._value = value
        self._loaded_at = time.monotonic()
        self._inline_due = self._loaded_at + self._interval()
        self._last_error = None
        self.outage.succeeded()
        return None
