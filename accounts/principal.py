"""Who is calling: the identity the gateway routes, limits and records by.

Resolving a bearer token takes two queries (key + groups); the gateway's hot path resolves the
same few keys thousands of times a second, so resolved principals are kept in-process for
`PRINCIPAL_CACHE_SECONDS`. Revoking a key therefore takes effect within that many seconds
(documented in docs/security.md).
"""

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

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


def _user_fields(user) -> dict:
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


def principal_for_api_key(api_key: ApiKey) -> Principal:
    return Principal(
        scopes=expand_scopes(api_key.scopes),
        api_key_id=api_key.pk,
        api_key_name=api_key.name,
        team=api_key.team,
        limits=KeyLimits.from_api_key(api_key),
        **_user_fields(api_key.user),
    )


class _PrincipalCache:
    """Resolved bearer tokens (API keys and JWTs), keyed by their SHA-256, for a few seconds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._loading: dict[str, threading.Lock] = {}

    def get(self, raw_token: str, load=None) -> Principal | None:
        """The principal for `raw_token`; `load(raw_token)` resolves a miss and returns
        `(principal, seconds it may be trusted or None)`. The default loads an API key."""
        digest = hash_key(raw_token)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1]
        with self._lock:
            loading = self._loading.setdefault(digest, threading.Lock())
        with loading:
            # When an entry expires under load, one thread reloads it; the others waiting here
            # find it fresh instead of each running the same queries.
            entry = self._entries.get(digest)
            now = time.monotonic()
            if entry is not None and entry[0] > now:
                return entry[1]
            try:
                principal, valid_s = (load or _load_api_key)(raw_token)
            except BaseException:
                # A failed load (database down) caches nothing and leaves no lock behind.
                with self._lock:
                    self._loading.pop(digest, None)
                raise
            ttl = settings.PRINCIPAL_CACHE_SECONDS
            if valid_s is not None:
                ttl = min(ttl, valid_s)
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[digest] = (now + ttl, principal)
                self._loading.pop(digest, None)
        return principal

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


def principal_from_api_key(raw_key: str) -> Principal | None:
    if not raw_key.startswith(KEY_PREFIX):
        return None
    return principal_cache.get(raw_key)
