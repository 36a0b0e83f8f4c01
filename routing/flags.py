"""Feature flags (django-waffle): the one place the gateway asks them, and what they mean.

What each does when off (for a caller, or a request):

- `routing_policies` (Flag): no policy is evaluated; the requested model's default provider.
- `cost_optimization` (Sample): no cheaper substitution (`cheapest`/`balanced` act as
  `priority`).
- `intelligent_routing` (Switch): targets in written order, no health/latency/load
  reordering, and no fallback.
- `intelligent_routing_fallback` (Switch): no fallback to another target.
- `intelligent_routing_monitoring` (Switch): the health probes stop (providers keep their
  last status).

Waffle decides percentages with a cookie; API clients keep none, so the percentage rollout
here is a stable hash of the flag name and the caller's user (an API key acts for its owner):
the same caller always gets the same answer, and raising 25 % to 50 % keeps everyone who was
in. Samples hash the request id. Everything else (everyone, superusers, staff, authenticated,
users, groups) follows waffle's own order. Flag rows are read through waffle's cache into an
in-process snapshot (core/snapshot.py) that a background thread reloads every
`ROUTING_SNAPSHOT_CHECK_SECONDS`, so a check costs no query, and no wait, once warm; while
the database (or Redis, for waffle's cache) is unreachable the last good state is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from waffle.models import Flag, Sample, Switch

from core.flags import (
    COST_OPTIMIZATION,
    INTELLIGENT_ROUTING,
    INTELLIGENT_ROUTING_FALLBACK,
    INTELLIGENT_ROUTING_MONITORING,
    ROUTING_POLICIES,
    SWITCHES,
)
from core.snapshot import LastGoodSnapshot
from routing.engine import DecisionOptions

SEED_GROUPS = ("enterprise", "beta-testers")


def install_seed_flags(apps) -> None:
    """Create the seed's flags in their seed states; rows that exist are left as they are.

    `apps` is an app registry: the migration passes its historical one, `seed_demo` and tests
    the live `django.apps.apps`, so there is one definition of the seed states.
    """
    group_model = apps.get_model("auth", "Group")
    flag_model = apps.get_model("waffle", "Flag")
    flag, created = flag_model.objects.get_or_create(
        name=ROUTING_POLICIES,
        defaults={
            "percent": 25,
            "superusers": False,
            "note": "Routing policies for 25% of users plus groups enterprise and beta-testers "
            "(docs/flags.md). Off for a caller: the requested model's default provider.",
        },
    )
    if created:
        flag.groups.add(*[group_model.objects.get_or_create(name=n)[0] for n in SEED_GROUPS])
    apps.get_model("waffle", "Sample").objects.get_or_create(
        name=COST_OPTIMIZATION,
        defaults={"percent": 10, "note": "Cost optimisation for 10% of requests (docs/flags.md)."},
    )
    for name in SWITCHES:
        apps.get_model("waffle", "Switch").objects.get_or_create(
            name=name, defaults={"active": True, "note": "docs/flags.md"}
        )


def bucket(*parts: str) -> float:
    """A stable position in [0, 100) for the given identity."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1_000_000 / 10_000


@dataclass(frozen=True)
class _FlagRule:
    exists: bool
    everyone: bool | None = None
    authenticated: bool = False
    staff: bool = False
    superusers: bool = False
    percent: float = 0.0
    user_ids: frozenset = frozenset()
    group_ids: frozenset = frozenset()

    def active_for(self, name: str, principal) -> bool:
        if not self.exists:
            return False
        if self.everyone is not None:
            return self.everyone
        if self.authenticated:
            return True
        if (self.staff and principal.is_staff) or (self.superusers and principal.is_superuser):
            return True
        if principal.user_id in self.user_ids or principal.group_ids & self.group_ids:
            return True
        return self.percent > 0 and bucket(name, "user", str(principal.user_id)) < self.percent


@dataclass(frozen=True)
class _FlagState:
    routing_policies: _FlagRule
    cost_optimization_percent: float
    switches: dict[str, bool]


def _load() -> _FlagState:
    flag = Flag.get(ROUTING_POLICIES)
    if flag.pk:
        rule = _FlagRule(
            exists=True,
            everyone=flag.everyone,
            authenticated=flag.authenticated,
            staff=flag.staff,
            superusers=flag.superusers,
            percent=float(flag.percent or 0),
            user_ids=frozenset(flag._get_user_ids()),
            group_ids=frozenset(flag._get_group_ids()),
        )
    else:
        rule = _FlagRule(exists=False)
    sample = Sample.get(COST_OPTIMIZATION)
    return _FlagState(
        routing_policies=rule,
        cost_optimization_percent=float(sample.percent) if sample.pk else 0.0,
        switches={name: Switch.get(name).is_active() for name in SWITCHES},
    )


_snapshot: LastGoodSnapshot[_FlagState] = LastGoodSnapshot(
    "flags", lambda _current: _load(), lambda: settings.ROUTING_SNAPSHOT_CHECK_SECONDS
)


def flags_warm() -> None:
    """The first, blocking load (at process start); raises StoreUnavailable if it fails."""
    _snapshot.warm()


def flags_outage():
    """The flags's reload failures (core/snapshot.OutageLog): for /readyz."""
    return _snapshot.outage


def flags_reset() -> None:
    """Forget the in-process copy (tests, or right after an operator changed a flag here)."""
    _snapshot.reset()


def decision_options(principal, request_id: str) -> DecisionOptions:
    """Map the flags for this caller and request onto the routing engine's options."""
    state = _snapshot.get()
    intelligent = state.switches[INTELLIGENT_ROUTING]
    return DecisionOptions(
        use_policies=state.routing_policies.active_for(ROUTING_POLICIES, principal),
        cost_optimization=bucket(COST_OPTIMIZATION, request_id) < state.cost_optimization_percent,
        intelligent=intelligent,
        fallback=intelligent and state.switches[INTELLIGENT_ROUTING_FALLBACK],
        max_cost_increase=settings.COST_OPTIMIZATION_MAX_COST_INCREASE,
        time_zone=settings.ROUTING_TIME_ZONE,
    )


def cost_optimization_percent() -> float:
    """The share of requests (0-100) on which cost-driven strategies order by cost."""
    return _snapshot.get().cost_optimization_percent


def monitoring_enabled() -> bool:
    return _snapshot.get().switches[INTELLIGENT_ROUTING_MONITORING]


def as_record(options: DecisionOptions) -> dict[str, bool]:
    """What the request log keeps: which behaviours were on for this request."""
    return {
        ROUTING_POLICIES: options.use_policies,
        COST_OPTIMIZATION: options.cost_optimization,
        INTELLIGENT_ROUTING: options.intelligent,
        INTELLIGENT_ROUTING_FALLBACK: options.fallback,
    }
