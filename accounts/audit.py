"""The audit trail: who changed which policy, provider, model, feature flag or API key.

Model signals record every save and delete of the audited models, whatever made it (admin,
REST API, services, management commands), as an `AuditEvent` written in the same
transaction as the change. The actor comes from the request being served
(`AuditContextMiddleware` puts it in a context variable; DRF copies the API-key or JWT user
onto the Django request when it authenticates) or from `audit_actor()` around work done
outside a request. Changes made through `QuerySet.update()` send no signals and are not
recorded; the code paths operators use (admin, API, services) all save instances.

Secrets never reach the trail: secret fields appear as "[redacted]" when set and "" when
not, so the trail shows that a key changed, not the key.
"""

from __future__ import annotations

import getpass
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

REDACTED = "[redacted]"


@dataclass(frozen=True)
class _Audited:
    secrets: frozenset[str] = frozenset()
    # Fields whose changes alone are not worth an event (timestamps, probe measurements).
    ignored: frozenset[str] = frozenset()


_TIMESTAMPS = frozenset({"created_at", "updated_at", "created", "modified"})

AUDITED = {
    "routing.RoutingPolicy": _Audited(secrets=frozenset({"sensitive_values"})),
    "routing.PolicyCanary": _Audited(ignored=frozenset({"figures"})),
    "providers.Provider": _Audited(
        secrets=frozenset({"api_key"}), ignored=frozenset({"avg_response_time"})
    ),
    "providers.ProviderModel": _Audited(),
    "waffle.Flag": _Audited(),
    "waffle.Sample": _Audited(),
    "waffle.Switch": _Audited(),
    "accounts.ApiKey": _Audited(
        secrets=frozenset({"hashed_key"}), ignored=frozenset({"last_used_at"})
    ),
}


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    label: str
    via: str
    remote_addr: str | None = None
    request_id: str = ""


_request: ContextVar = ContextVar("auterity_audit_request", default=None)
_actor: ContextVar = ContextVar("auterity_audit_actor", default=None)


@contextmanager
def request_context(request):
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


@contextmanager
def audit_actor(label: str, *, via: str = "cli", user=None):
    """Attribute changes made inside the block to `label` (management commands, jobs)."""
    token = _actor.set(Actor(user.pk if user else None, label, via))
    try:
        yield
    finally:
        _actor.reset(token)


def command_actor(command: str) -> str:
    """How a management command appears in the trail."""
    try:
        who = getpass.getuser()
    except Exception:  # no passwd entry or USER in some containers
        who = "unknown"
    return f"manage.py {command} (OS user {who})"


def current_actor() -> Actor:
    explicit = _actor.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    if request is None:
        return Actor(None, "system", "system")
    from django.urls import reverse

    from .models import ApiKey

    user = getattr(request, "user", None)
    auth = getattr(request, "auth", None)
    via = "admin" if request.path.startswith(reverse("admin:index")) else "api"
    remote = request.META.get("REMOTE_ADDR") or None
    # The id Auterity gave the request (core/request_context.py), as on its log lines.
    request_id = getattr(request, "request_id", "")
    if user is None or not user.is_authenticated:
        return Actor(None, "anonymous", via, remote, request_id)
    label = user.get_username()
    if isinstance(auth, ApiKey):
        label = f"{label} (API key {auth.name}, {auth.prefix}…)"
    return Actor(user.pk, label, via, remote, request_id)


# --- snapshots -------------------------------------------------------------------------------


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.object_name}"


def _json_safe(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _plain(field, value):
    """One field's value as the trail stores it: what was saved, in a stable JSON form."""
    if isinstance(field, models.DecimalField) and value is not None:
        # 50, 50.0 and Decimal("50.00") are one value; say it one way ("50").
        return format(Decimal(str(value)).normalize(), "f")
    return value


def snapshot(instance, spec: _Audited) -> dict:
    """The instance's concrete fields as JSON-safe values, secrets redacted."""
    data = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if field.name in spec.secrets:
            value = REDACTED if value else ""
        data[field.name] = _plain(field, value)
    return _json_safe(data)


def _raw(instance, spec: _Audited) -> dict:
    """Secret values in clear, only to tell whether they changed; never stored."""
    return {name: getattr(instance, name, None) for name in spec.secrets}


def _diff(before: dict, after: dict, spec: _Audited, secrets_changed: set[str]) -> dict:
    changes = {}
    for name, new in after.items():
        if name in _TIMESTAMPS or name in spec.ignored:
            continue
        old = before.get(name)
        if name in spec.secrets:
            if name in secrets_changed:
                changes[name] = [old, new]
        elif old != new:
            changes[name] = [old, new]
    return changes


def _record(instance, action: str, *, changes=None, before=None, after=None) -> None:
    from .models import AuditEvent

    actor = current_actor()
    AuditEvent.objects.create(
        actor_id=actor.user_id,
        actor_label=actor.label[:255],
        via=actor.via,
        action=action,
        object_type=_label(type(instance)),
        object_id=str(instance.pk)[:255],
        object_repr=str(instance)[:255],
        changes=changes or {},
        before=before,
        after=after,
        remote_addr=actor.remote_addr,
        request_id=actor.request_id,
    )


# --- signal handlers -------------------------------------------------------------------------


def _spec(sender) -> _Audited | None:
    return AUDITED.get(_label(sender))


def _pre_save(sender, instance, raw=False, **kwargs):
    spec = _spec(sender)
    if spec is None or raw:
        return
    previous = None
    if instance.pk is not None:
        # Even an instance built anew with a natural key (providers) may overwrite a row.
        previous = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_before = (
        (snapshot(previous, spec), _raw(previous, spec)) if previous is not None else None
    )


def _post_save(sender, instance, created, raw=False, **kwargs):
    spec = _spec(sender)
    if spec is None or raw:
        return
    previous = instance.__dict__.pop("_audit_before", None)
    after = snapshot(instance, spec)
    if previous is None:
        _record(instance, "create", after=after)
        return
    before, raw_before = previous
    raw_after = _raw(instance, spec)
    secrets_changed = {name for name in spec.secrets if raw_before[name] != raw_after[name]}
    changes = _diff(before, after, spec, secrets_changed)
    if changes:
        _record(instance, "update", changes=changes, before=before, after=after)


def _post_delete(sender, instance, **kwargs):
    spec = _spec(sender)
    if spec is not None:
        _record(instance, "delete", before=snapshot(instance, spec))


def _m2m_names(instance, field_name) -> list[str]:
    return sorted(str(obj) for obj in getattr(instance, field_name).all())


def _m2m_changed(sender, instance, action, reverse, **kwargs):
    """Flag users and groups (who a feature flag is on for) are many-to-many fields."""
    if reverse or _spec(type(instance)) is None:
        return
    field_name = next(
        (f.name for f in instance._meta.many_to_many if f.remote_field.through is sender), None
    )
    if field_name is None:
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        instance.__dict__.setdefault("_audit_m2m", {})[field_name] = _m2m_names(
            instance, field_name
        )
    elif action in ("post_add", "post_remove", "post_clear"):
        before = instance.__dict__.get("_audit_m2m", {}).pop(field_name, None)
        after = _m2m_names(instance, field_name)
        if before is not None and before != after:
            _record(instance, "update", changes={field_name: [before, after]})


def connect() -> None:
    from django.apps import apps

    for label in AUDITED:
        model = apps.get_model(label)
        uid = f"audit-{label}"
        pre_save.connect(_pre_save, sender=model, dispatch_uid=f"{uid}-pre")
        post_save.connect(_post_save, sender=model, dispatch_uid=f"{uid}-post")
        post_delete.connect(_post_delete, sender=model, dispatch_uid=f"{uid}-delete")
        for field in model._meta.many_to_many:
            m2m_changed.connect(
                _m2m_changed, sender=field.remote_field.through, dispatch_uid=f"{uid}-{field.name}"
            )
