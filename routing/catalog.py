"""The gateway's in-process view of policies, providers and prices.

Building it takes a few queries; the hot path never runs them. Every process keeps one
compiled snapshot and rebuilds it when the catalogue version in the shared cache changes.
Any save or delete of a provider, model or policy bumps the version (signals, after commit),
and each process looks at the version at most every `ROUTING_SNAPSHOT_CHECK_SECONDS`, so all
workers pick up a change within about a second, without a restart.
"""

import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from providers.adapters.types import ProviderEndpoint
from providers.models import Provider
from routing.choices import PolicyStatus
from routing.engine import (
    DRAINED,
    ModelOffer,
    PolicyError,
    ProviderInfo,
    Snapshot,
    compile_policy,
    compile_snapshot,
)
from routing.models import RoutingPolicy
from routing.offers import catalogue_offers

logger = logging.getLogger(__name__)

VERSION_KEY = "auterity:catalogue-version"


@dataclass(frozen=True)
class Catalogue:
    """Everything a request needs, read once: the engine snapshot and how to reach providers."""

    version: str
    snapshot: Snapshot
    endpoints: dict[str, ProviderEndpoint]
    offers: dict[tuple[str, str], ModelOffer]
    broken_policies: tuple[str, ...]


def catalogue_build(version: str) -> Catalogue:
    providers = list(Provider.objects.all())
    infos = [
        ProviderInfo(
            id=p.id,
            type=p.type,
            status=DRAINED if p.drained_at else p.status,
            capacity=p.capacity,
            avg_response_time=float(p.avg_response_time)
            if p.avg_response_time is not None
            else None,
        )
        for p in providers
    ]
    endpoints = {p.id: endpoint for p in providers if (endpoint := p.endpoint()) is not None}
    compiled, broken = [], []
    for policy in RoutingPolicy.objects.filter(status=PolicyStatus.ACTIVE):
        try:
            compiled.append(
                compile_policy(
                    policy.id,
                    policy.name,
                    policy.priority,
                    policy.resolved_conditions(),  # sensitive values decrypted in memory only
                    policy.resolved_actions(),
                )
            )
        except PolicyError as exc:
            # Saved before a rule tightened, or edited in SQL: skip it loudly, never crash.
            logger.error("active policy %s (%s) does not compile: %s", policy.name, policy.id, exc)
            broken.append(policy.name)
    offers = catalogue_offers()
    snapshot = compile_snapshot(compiled, infos, offers, version=version)
    return Catalogue(
        version=version,
        snapshot=snapshot,
        endpoints=endpoints,
        offers={(o.provider_id, o.model): o for o in offers},
        broken_policies=tuple(broken),
    )


class _CatalogueHolder:
    def __init__(self):
        self._lock = threading.Lock()
        self._catalogue: Catalogue | None = None
        self._checked_at = 0.0

    def get(self) -> Catalogue:
        now = time.monotonic()
        current = self._catalogue
        if current is not None and now - self._checked_at < settings.ROUTING_SNAPSHOT_CHECK_SECONDS:
            return current
        with self._lock:
            latest = self._catalogue  # None again if invalidate() ran while this thread waited
            if latest is not None and latest is not current:
                return latest  # another thread just refreshed it
            version = cache.get(VERSION_KEY)
            if version is None:
                version = uuid.uuid4().hex
                cache.add(VERSION_KEY, version, timeout=None)
                version = cache.get(VERSION_KEY, version)
            if latest is None or latest.version != version:
                self._catalogue = catalogue_build(version)
            self._checked_at = now
            return self._catalogue

    def invalidate(self):
        with self._lock:
            self._catalogue = None


_holder = _CatalogueHolder()


def catalogue_get() -> Catalogue:
    """The current catalogue of this process (rebuilt if another process changed the data)."""
    return _holder.get()


def catalogue_changed() -> None:
    """Tell every process the catalogue changed (after the current transaction commits)."""

    def bump():
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        _holder.invalidate()

    transaction.on_commit(bump)
