"""Who is calling: the identity the gateway routes, limits and records by.

Resolving a bearer token takes two queries (key + groups); the gateway's hot path resolves the
same few keys thousands of times a second, so resolved principals are kept in-process for
`PRINCIPAL_CACHE_SECONDS`. Revoking a key therefore takes effect within that many seconds
(documented in docs/security.md). While the database is unreachable a key already seen keeps
its last good principal (PRINCIPAL_STALE_MAX_SECONDS at most); a key never seen gets a 503.
Each server process loads every active key when it starts (`principals_warm`), so "seen"
covers the keys that existed then, not only those this process happened to serve.
"""

import contextlib
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone

from core.snapshot import OutageLog, StoreUnavailable, refresher

from .choices import Scope
from .limits import KeyLimits, caller_key
from .models import KEY_PREFIX, ApiKey, hash_key
from .services import api_key_authenticate


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    groups: frozenset[str]
    scopes: frozenset[str]
    group_ids: frozenset[int] = frozenset()
    is_staff: bool = False
    is_superuser: bool = False
    api_key_id: int | None = None
    api_key_name: str = ""
    team: str = ""
    # The key's own abuse limits (None: the RATE_LIMIT_* defaults); see accounts/limits.py.
    limits: KeyLimits | None = field(default=None, compare=False)

    @property
    def caller_key(self) -> str:
        """Stable identity for bucketing and limits: the API key, else the user."""
        return caller_key(self.api_key_id, self.user_id)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def expand_scopes(scopes) -> frozenset[str]:
    """Managing routing includes reading it, for keys as for users."""
    scopes = frozenset(scopes)
    if Scope.ROUTING_MANAGE in scopes:
        scopes |= {Scope.ROUTING_VIEW.value}
    return scopes


def user_scopes(user) -> frozenset[str]:
    """Scopes of a user session/JWT: superusers have all, others by Django permission."""
    if user.is_superuser:
        return frozenset(Scope.values)
    perms = user.get_all_permissions()
    scopes = set()
    if "accounts.ai_execute" in perms:
        scopes.add(Scope.AI_EXECUTE.value)
    if "accounts.routing_view" in perms or "accounts.routing_manage" in perms:
        scopes.add(Scope.ROUTING_VIEW.value)
    if "accounts.routing_manage" in perms:
        scopes.add(Scope.ROUTING_MANAGE.value)
    return frozenset(scopes)


def _user_fields(user, groups: list[tuple[int, str]] | None = None) -> dict:
    """`groups` as (pk, name) pairs when the caller loaded them already."""
    if groups is None:
        groups = list(user.groups.values_list("pk", "name"))
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "groups": frozenset(name for _, name in groups),
        "group_ids": frozenset(pk for pk, _ in groups),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


def principal_for_user(user) -> Principal:
    return Principal(scopes=user_scopes(user), **_user_fields(user))


def principal_for_api_key(
    api_key: ApiKey, groups: list[tuple[int, str]] | None = None
) -> Principal:
    return Principal(
        scopes=expand_scopes(api_key.scopes),
        api_key_id=api_key.pk,
        api_key_name=api_key.name,
        team=api_key.team,
        limits=KeyLimits.from_api_key(api_key),
        **_user_fields(api_key.user, groups),
    )


# What `peek()` answers for a token this process holds no usable answer for.
MISS = object()
# After a failed reload, a token's last good principal serves this long before the next try.
_RETRY_AFTER_FAILURE_S = 1.0


class _Entry:
    __slots__ = ("expires_at", "hard_expiry", "load", "loaded_at", "principal", "retry_at")

    def __init__(self, principal, loaded_at, ttl, valid_s, load):
        self.principal = principal
        self.loaded_at = loaded_at
        self.expires_at = loaded_at + ttl
        # A key or token that expires is never served past its expiry, stale or not.
        self.hard_expiry = loaded_at + valid_s if valid_s is not None else float("inf")
        self.load = load
        self.retry_at = 0.0

    def fresh(self, now: float) -> bool:
        return now < self.expires_at

    def usable_stale(self, now: float) -> bool:
        return (
            now < self.hard_expiry and now - self.loaded_at < settings.PRINCIPAL_STALE_MAX_SECONDS
        )


class _PrincipalCache:
    """Resolved bearer tokens (API keys and JWTs), keyed by their SHA-256.

    An answer is fresh for PRINCIPAL_CACHE_SECONDS. Past that it is reloaded; while the
    database is unreachable the last good answer keeps serving for up to
    PRINCIPAL_STALE_MAX_SECONDS after it was loaded (never past the key's or token's own
    expiry), with one log line per outage (core/snapshot.py's OutageLog) and
    `auterity_snapshot_stale_seconds{snapshot="principals"}`. A token never seen before cannot
    be checked then: StoreUnavailable (a 503 for the caller)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, threading.Lock] = {}
        self.outage = OutageLog("principals")

    def peek(self, raw_token: str):
        """From memory only, for the gateway's event loop: the cached principal, None for a
        token known to be bad, or MISS (resolve it with `principal_from_api_key` /
        `principal_from_jwt` off the loop). A stale answer that may still serve is returned
        and reloaded in the background."""
        entry = self._entries.get(hash_key(raw_token))
        if entry is None:
            return MISS
        now = time.monotonic()
        if entry.fresh(now):
            return entry.principal
        if not entry.usable_stale(now):
            return MISS
        if now >= entry.retry_at:
            refresher.submit(
                ("principal", hash_key(raw_token)),
                lambda: self._reload_quietly(raw_token, entry.load),
            )
        return entry.principal

    def get(self, raw_token: str, load=None) -> Principal | None:
        """The principal for `raw_token`; `load(raw_token)` resolves a miss and returns
        `(principal, seconds it may be trusted or None)`. The default loads an API key.
        May query the database; raises StoreUnavailable when it cannot answer."""
        load = load or _load_api_key
        digest = hash_key(raw_token)
        entry = self._entries.get(digest)
        if entry is not None and entry.fresh(time.monotonic()):
            return entry.principal
        with self._lock:
            loading = self._loading.setdefault(digest, threading.Lock())
        with loading:
            # When an entry expires under load, one thread reloads it; the others waiting here
            # find it fresh instead of each running the same queries.
            entry = self._entries.get(digest)
            now = time.monotonic()
            if entry is not None and (
                entry.fresh(now) or (now < entry.retry_at and entry.usable_stale(now))
            ):
                return entry.principal
            try:
                return self._load(digest, raw_token, load)
            except DatabaseError as exc:
                self.outage.failed(exc)
                refresher.watch(self.outage)
                if entry is not None and entry.usable_stale(now):
                    entry.retry_at = now + _RETRY_AFTER_FAILURE_S
                    return entry.principal
                raise StoreUnavailable("the caller's credentials", exc) from exc
            finally:
                with self._lock:
                    self._loading.pop(digest, None)

    def _load(self, digest: str, raw_token: str, load) -> Principal | None:
        now = time.monotonic()
        principal, valid_s = load(raw_token)
        self.outage.succeeded()
        ttl = settings.PRINCIPAL_CACHE_SECONDS
        if valid_s is not None:
            ttl = min(ttl, valid_s)
        with self._lock:
            if len(self._entries) > 10_000:
                # Bad tokens first: a flood of made-up tokens must not evict real callers'
                # answers, which are what keeps them served through a database outage.
                for key in [k for k, e in self._entries.items() if e.principal is None]:
                    del self._entries[key]
                if len(self._entries) > 10_000:
                    self._entries.clear()
            self._entries[digest] = _Entry(principal, now, ttl, valid_s, load)
        return principal

    def preload(self, answers: list[tuple[str, Principal, float | None]], load) -> int:
        """Enter `(key digest, principal, seconds it may be trusted or None)` answers loaded
        in bulk, as if each had just been resolved by `load`; entries already held are kept
        (they may be newer). Returns how many were added."""
        now = time.monotonic()
        added = 0
        with self._lock:
            for digest, principal, valid_s in answers:
                if digest in self._entries:
                    continue
                ttl = settings.PRINCIPAL_CACHE_SECONDS
                if valid_s is not None:
                    ttl = min(ttl, valid_s)
                self._entries[digest] = _Entry(principal, now, ttl, valid_s, load)
                added += 1
        return added

    def _reload_quietly(self, raw_token: str, load) -> None:
        """peek()'s background reload; a failure keeps the entry (reported once per outage)."""
        with contextlib.suppress(StoreUnavailable):
            self.get(raw_token, load)

    def clear(self):
        with self._lock:
            self._entries.clear()


def _load_api_key(raw_key: str) -> tuple[Principal | None, float | None]:
    api_key = api_key_authenticate(raw_key)
    if api_key is None:
        return None, None
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        # At most one write a minute per key and process: "last used" needs no more.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    valid_s = (api_key.expires_at - now).total_seconds() if api_key.expires_at else None
    return principal_for_api_key(api_key), valid_s


principal_cache = _PrincipalCache()


def principals_warm() -> int:
    """Load every active API key's principal into this process's cache (two queries: the
    keys with their users, then those users' groups), most recently used first and at most
    PRINCIPAL_PRELOAD_MAX, so that through a database outage a worker serves every key that
    existed when it started, not only the ones it happened to see (a client reconnecting to
    another worker, a worker started fresh). Called once per server process at start
    (auterity/asgi.py). Returns how many keys it added; StoreUnavailable when the database
    cannot answer."""
    now = timezone.now()
    try:
        keys = list(
            ApiKey.objects.select_related("user")
            .filter(revoked_at__isnull=True, user__is_active=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by(F("last_used_at").desc(nulls_last=True), "-pk")[
                : settings.PRINCIPAL_PRELOAD_MAX
            ]
        )
        memberships = get_user_model().groups.through.objects.filter(
            user_id__in={key.user_id for key in keys}
        )
        groups: dict[int, list[tuple[int, str]]] = {}
        for user_id, group_id, name in memberships.values_list(
            "user_id", "group_id", "group__name"
        ):
            groups.setdefault(user_id, []).append((group_id, name))
    except DatabaseError as exc:
        raise StoreUnavailable("the API keys", exc) from exc
    answers = [
        (
            key.hashed_key,
            principal_for_api_key(key, groups.get(key.user_id, [])),
            (key.expires_at - now).total_seconds() if key.expires_at else None,
        )
        for key in keys
    ]
    return principal_cache.preload(answers, _load_api_key)


def principal_from_api_key(raw_key: str) -> Principal | None:
    if not raw_key.startswith(KEY_PREFIX):
        return None
    return principal_cache.get(raw_key)
