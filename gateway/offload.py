"""Blocking work of the gateway's event loop (database, Redis, the request log's wait) runs on
threads, never on the loop itself.

`run_blocking(fn, *args)` runs `fn` on the gateway's I/O threads (GATEWAY_BLOCKING_THREADS) in
the caller's context (the request id reaches the log lines and the request-log row). The loop
meanwhile serves the other requests; a database or Redis that hangs holds a thread, not the
process.

When the gateway application is served from inside Django (the test client, `live_server`,
`manage.py runserver`: gateway/bridge.py), the blocking work must run on the thread that is
serving the Django request instead: that thread's database connection is the one that sees a
test's uncommitted rows. The bridge installs a `CallerThread` executor for the request, which
queues the work for that thread while it waits. Nothing here uses asgiref's thread-sensitive
mode: one event loop, explicit executors, no shared executor that a live server could
deadlock on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings

_executor: contextvars.ContextVar[concurrent.futures.Executor | None] = contextvars.ContextVar(
    "gateway_blocking_executor", default=None
)
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _gateway_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=settings.GATEWAY_BLOCKING_THREADS,
                    thread_name_prefix="gateway-io",
                )
    return _pool


async def run_blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` off the event loop, in the current context."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    executor = _executor.get() or _gateway_pool()
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def use_executor(executor: concurrent.futures.Executor | None) -> contextvars.Token:
    """Make `run_blocking` use `executor` in this context (gateway/bridge.py)."""
    return _executor.set(executor)


def pool_shutdown() -> None:
    """Stop the I/O threads (a worker's shutdown, after its last request)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


class CallerThread(concurrent.futures.Executor):
    """Runs submitted work on the thread that calls `wait_for(future)`, while it waits."""

    def __init__(self):
        self._work: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._work.put((future, fn, args, kwargs))
        return future

    def wait_for(self, future: concurrent.futures.Future) -> Any:
        """Serve submitted work until `future` is done; return its result."""
        done = object()
        future.add_done_callback(lambda _future: self._work.put(done))
        while True:
            item = self._work.get()
            if item is done:
                return future.result()
            work, fn, args, kwargs = item
            if not work.set_running_or_notify_cancel():
                continue
            try:
                work.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the awaiting coroutine
                work.set_exception(exc)
