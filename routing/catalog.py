"""The gateway's in-process view of policies, providers and prices.

Building it takes a few queries; the hot path never runs them. Every process keeps one
compiled snapshot (core/snapshot.py) and rebuilds it when the catalogue version in the shared
cache changes. Any save or delete of a provider, model or policy bumps the version (signals,
after commit), and each process's background thread looks at the version every
`ROUTING_SNAPSHOT_CHECK_SECONDS`, so all workers pick up a change within about a second,
without a restart. While the cache keeps no version (Redis down) the background thread
rebuilds from the database every UNVERSIONED_REBUILD_SECONDS; while the database is down the
last good catalogue serves (nothing can change it meanwhile).
"""

import logging
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from core.snapshot import LastGoodSnapshot
from providers.adapters.types import ProviderEndpoint
from providers.models import Provider
from routing.choices import CanaryState, PolicyStatus
from routing.engine import (
    DRAINED,
    ModelOffer,
    PolicyError,
    ProviderInfo,
    Snapshot,
    compile_policy,
    compile_snapshot,
)
from routing.models import PolicyCanary, RoutingPolicy
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
    built_at: float = field(default_factory=time.monotonic, compare=False)


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
    # Canaries route their share of callers (routing/engine/canary.py).
    canaries = dict(
        PolicyCanary.objects.filter(
            state=CanaryState.RUNNING, policy__status=PolicyStatus.CANARY
        ).values_list("policy_id", "percent")
    )
    routing = RoutingPolicy.objects.filter(status__in=[PolicyStatus.ACTIVE, PolicyStatus.CANARY])
    for policy in routing:
        if policy.status == PolicyStatus.CANARY and policy.id not in canaries:
            continue  # a canary without its running record routes nothing
        try:
            compiled.append(
                compile_policy(
                    policy.id,
                    policy.name,
                    policy.priority,
                    policy.resolved_conditions(),  # sensitive values decrypted in memory only
                    policy.resolved_actions(),
                    canary_percent=canaries.get(policy.id),
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


# While the shared cache keeps no version (Redis down), the catalogue is rebuilt from the
# database this often instead, so changes made elsewhere still arrive (docs/deployment.md).
UNVERSIONED_REBUILD_SECONDS = 10.0
_UNVERSIONED = "unversioned:"


def _shared_version() -> str | None:
    """The catalogue version every process agrees on, or None when the cache keeps nothing (the
    cache backend answers like an empty cache while Redis is down: core/cache.py)."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY)
    return version


def _catalogue_load(current: Catalogue | None) -> Catalogue:
    """The snapshot's loader: the same catalogue while the version is unchanged, a new build
    when it changed (or every UNVERSIONED_REBUILD_SECONDS while no version can be read)."""
    version = _shared_version()
    if version is None:
        if (
            current is not None
            and current.version.startswith(_UNVERSIONED)
            and time.monotonic() - current.built_at < UNVERSIONED_REBUILD_SECONDS
        ):
            return current
        version = _UNVERSIONED + uuid.uuid4().hex
    if current is not None and current.version == version:
        return current
    return catalogue_build(version)


_snapshot: LastGoodSnapshot[Catalogue] = LastGoodSnapshot(
    "catalogue", _catalogue_load, lambda: settings.ROUTING_SNAPSHOT_CHECK_SECONDS
)


def catalogue_get() -> Catalogue:
    """This process's catalogue, from memory (no I/O once warm: a background thread checks the
    shared version every ROUTING_SNAPSHOT_CHECK_SECONDS and rebuilds it when another process
    changed the data). While the database or the cache is unreachable, the last good catalogue
    keeps serving. Raises StoreUnavailable only if it was never loaded and cannot be now."""
    return _snapshot.get()


def catalogue_warm() -> Catalogue:
    """The first, blocking load (at process start); raises StoreUnavailable if it fails."""
    return _snapshot.warm()


def catalogue_peek() -> Catalogue | None:
    """The catalogue if this process has one, else None (a background load starts); no I/O."""
    return _snapshot.peek()


def catalogue_outage():
    """The catalogue's reload failures (core/snapshot.OutageLog): for /readyz."""
    return _snapshot.outage


def catalogue_reset() -> None:
    """Forget this process's catalogue: the next catalogue_get() loads it (tests)."""
    _snapshot.reset()


def catalogue_changed() -> None:
    """Tell every process the catalogue changed (after the current transaction commits); this
    process rebuilds its own at once, in the committing thread."""

    def bump():
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        _snapshot.refresh_now()

    transaction.on_commit(bump)
