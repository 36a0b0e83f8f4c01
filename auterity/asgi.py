"""The web application (`python -m auterity.server`, granian's ASGI interface).

Two applications behind one entry point: the gateway's paths (`/v1/...`, `/api/ai/execute`,
`/healthz`: gateway/app.py, asynchronous end to end, thousands of calls and streams in flight
per process) and Django's ASGI handler for everything else (admin, REST API, the dry run,
/readyz, /metrics), whose synchronous views Django runs on its own thread.

The lifespan is handled here (Django's handler does not speak it): at start-up the tokenizer
and the hot-path snapshots load before the first request; at shutdown, after the server has
finished the requests in flight, the request-log writer writes what it holds, and the upstream
connections close.
"""

import asyncio
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")

django_application = get_asgi_application()

# Imported once Django is set up (the app's modules import models).
from accounts.principal import principals_warm  # noqa: E402
from analytics.log_writer import request_log_writer  # noqa: E402
from core.snapshot import StoreUnavailable  # noqa: E402
from gateway import app as gateway_app  # noqa: E402
from gateway.offload import pool_shutdown  # noqa: E402
from providers.adapters import aclose_sessions, tokens  # noqa: E402
from routing.catalog import catalogue_warm  # noqa: E402
from routing.flags import flags_warm  # noqa: E402

logger = logging.getLogger(__name__)
gateway = gateway_app.GatewayApp()


def warm_up() -> None:
    """The tokenizer's vocabulary (about a second) and the hot path's first, blocking loads
    (core/snapshot.py), before the first request; if a store is down now, the first requests
    try again and get a clear 503 until it is back."""
    tokens.warm_up()
    for warm in (catalogue_warm, flags_warm, principals_warm):
        try:
            warm()
        except StoreUnavailable as exc:
            logger.warning("%s; the first requests will try again", exc)


def shut_down() -> None:
    request_log_writer().close()
    pool_shutdown()


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await asyncio.to_thread(warm_up)
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await aclose_sessions()
            await asyncio.to_thread(shut_down)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):
    if scope["type"] == "http" and gateway_app.serves(scope["path"]):
        return await gateway(scope, receive, send)
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    return await django_application(scope, receive, send)
