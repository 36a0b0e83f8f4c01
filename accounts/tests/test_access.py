"""Who may call what: every URL refuses anonymous callers with JSON 401, every wrong scope gets
403, JWTs carry and are limited to scopes, the admin is for staff only."""

import re

import pytest
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from accounts.permissions import ScopePermission

pytestmark = pytest.mark.django_db

# Public by design (docs/security.md): probes and the scrape (METRICS_TOKEN, tested below), the
# OpenAPI schema and its UI, the JWT login endpoints, and the browser login UIs of the admin
# and the browsable API (they redirect to their login forms; tested below).
PUBLIC_PREFIXES = (
    "healthz",
    "readyz",
    "metrics",
    "api/schema/",
    "api/docs/",
    "api/auth/token/",
    "admin/",
    "api-auth/",
)
METHODS = ("get", "post", "put", "patch", "delete")


def _concrete(route: str) -> str:
    """A path that matches a URL pattern: parameters get sample values."""
    route = route.lstrip("^").rstrip("$")
    route = re.sub(r"\(\?P<format>[^)]*\)", "json", route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
    route = re.sub(r"<drf_format_suffix\w*:format>", ".json", route)
    route = re.sub(r"<(?:\w+:)?\w+>", "1", route)
    return route.replace("\\.", ".").replace("/?", "/").replace("\\", "")


def walk(patterns=None, prefix=""):
    """(path, pattern, callback) for every URL pattern of the project."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + _concrete(str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            if route.startswith("admin/"):
                yield route, pattern, None  # Django's admin: one entry, tested separately
                continue
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern, pattern.callback


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def test_the_walk_finds_every_area_and_only_the_documented_public_paths():
    paths = [path for path, _, _ in walk()]
    for expected in (
        "v1/chat/completions",
        "v1/models",
        "api/ai/execute",
        "api/routing/simulate",
        "api/providers/",
        "api/provider-models/1/",
        "api/routing/policies/1/activate/",
        "api/routing/analytics/",
    ):
        assert expected in paths
    public_roots = {
        next(p for p in PUBLIC_PREFIXES if path.startswith(p)) for path in paths if is_public(path)
    }
    assert public_roots == set(PUBLIC_PREFIXES)


def test_every_url_answers_an_anonymous_request_with_json_401():
    client = APIClient()
    checked = 0
    for path, _, _ in walk():
        if is_public(path):
            continue
        statuses = {}
        for method in METHODS:
            response = getattr(client, method)("/" + path, {}, format="json")
            statuses[method] = response.status_code
            if response.status_code == 405:
                continue  # e.g. GET on a POST-only gateway view: nothing is served either way
            assert response.status_code == 401, (method, path, response.status_code)
            assert response["Content-Type"].startswith("application/json"), path
            assert response.json()
            assert response.has_header("WWW-Authenticate"), path
        assert 401 in statuses.values(), (path, statuses)
        checked += 1
    assert checked >= 15


def test_every_drf_view_checks_a_scope():
    for path, _, callback in walk():
        cls = getattr(callback, "cls", None)
        if cls is None or not issubclass(cls, APIView) or is_public(path):
            continue
        assert any(issubclass(p, ScopePermission) for p in cls.permission_classes), (path, cls)


def test_the_admin_redirects_anonymous_and_non_staff_users_to_its_login(client, make_user):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get("/admin/providers/provider/").status_code == 302

    # a user with every scope but no staff flag still has no admin
    make_user("operator", perms=("routing_manage", "ai_execute"))
    # django-axes needs the request a login comes with
    assert client.login(request=HttpRequest(), username="operator", password="pw-123456")
    response = client.get("/admin/providers/provider/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_reach_the_admin(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/auditevent/").status_code == 200


# --- scope matrix ----------------------------------------------------------------------------

# (method, path, scope it needs); {policy} is replaced by a real policy id.
MATRIX = [
    ("get", "/api/providers/", "routing:view"),
    ("post", "/api/providers/", "routing:manage"),
    ("get", "/api/provider-models/", "routing:view"),
    ("post", "/api/provider-models/", "routing:manage"),
    ("get", "/api/routing/policies/", "routing:view"),
    ("post", "/api/routing/policies/", "routing:manage"),
    ("get", "/api/routing/policies/{policy}/", "routing:view"),
    ("patch", "/api/routing/policies/{policy}/", "routing:manage"),
    ("delete", "/api/routing/policies/{policy}/", "routing:manage"),
    ("post", "/api/routing/policies/{policy}/activate/", "routing:manage"),
    ("post", "/api/routing/policies/{policy}/deactivate/", "routing:manage"),
    ("get", "/api/routing/analytics/", "routing:view"),
    ("post", "/api/routing/simulate", "routing:view"),
    ("get", "/v1/models", "ai:execute"),
    ("post", "/v1/chat/completions", "ai:execute"),
    ("post", "/api/ai/execute", "ai:execute"),
]
SCOPES = ("ai:execute", "routing:view", "routing:manage")
# What each single scope grants: managing routing includes reading it.
GRANTS = {
    "ai:execute": {"ai:execute"},
    "routing:view": {"routing:view"},
    "routing:manage": {"routing:manage", "routing:view"},
}


@pytest.fixture
def policy(db):
    from routing.models import RoutingPolicy

    return RoutingPolicy.objects.create(
        name="matrix", conditions={}, actions={"targets": [{"provider": "openai"}]}
    )


@pytest.mark.parametrize("scope", SCOPES)
def test_scope_matrix_every_wrong_scope_gets_json_403(scope, make_key, policy):
    raw, _ = make_key([scope])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for method, path, needed in MATRIX:
        path = path.format(policy=policy.pk)
        response = getattr(client, method)(path, {}, format="json")
        if needed in GRANTS[scope]:
            assert response.status_code not in (401, 403), (scope, method, path)
        else:
            assert response.status_code == 403, (scope, method, path, response.status_code)
            body = response.json()
            message = body.get("detail") or body["error"]["message"]
            assert needed in message, (path, body)


def test_a_key_with_every_scope_passes_every_check(make_key, policy):
    raw, _ = make_key(list(SCOPES))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for method, path, _ in MATRIX:
        response = getattr(client, method)(path.format(policy=policy.pk), {}, format="json")
        assert response.status_code not in (401, 403), (method, path)


# --- JWT -------------------------------------------------------------------------------------


def obtain(client, username, password="pw-123456"):
    return client.post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_jwt_carries_the_users_scopes_and_grants_exactly_them(make_user):
    make_user("viewer", perms=("routing_view",))
    client = APIClient()
    tokens = obtain(client, "viewer").json()
    assert tokens["scopes"] == ["routing:view"]
    assert AccessToken(tokens["access"])["scopes"] == ["routing:view"]

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/routing/policies/").status_code == 200
    refused = client.post("/api/routing/policies/", {"name": "x"}, format="json")
    assert refused.status_code == 403
    assert "routing:manage" in refused.json()["detail"]
    assert client.get("/v1/models").status_code == 403


def test_a_jwt_grants_no_more_than_the_user_still_has(make_user):
    user = make_user("shrinking", perms=("routing_manage",))
    client = APIClient()
    access = obtain(client, "shrinking").json()["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get("/api/providers/").status_code == 200

    user.user_permissions.clear()
    assert client.get("/api/providers/").status_code == 403


def test_refresh_issues_an_access_token_with_the_scopes_of_now(make_user):
    user = make_user("grower", perms=("routing_view",))
    client = APIClient()
    refresh = obtain(client, "grower").json()["refresh"]
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="ai_execute"))
    answer = client.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert answer.status_code == 200
    assert answer.json()["scopes"] == ["ai:execute", "routing:view"]
    assert AccessToken(answer.json()["access"])["scopes"] == ["ai:execute", "routing:view"]


def test_refresh_refuses_a_deactivated_user_and_a_garbage_token(make_user):
    user = make_user("leaver", perms=("routing_view",))
    client = APIClient()
    refresh = obtain(client, "leaver").json()["refresh"]
    user.is_active = False
    user.save()
    gone = client.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert gone.status_code == 401
    garbage = client.post("/api/auth/token/refresh/", {"refresh": "x.y.z"}, format="json")
    assert garbage.status_code == 401


def test_wrong_password_and_bad_tokens_get_json_401(make_user):
    make_user("someone", perms=("routing_view",))
    client = APIClient()
    assert obtain(client, "someone", "wrong").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    response = client.get("/api/providers/")
    assert response.status_code == 401 and response.json()["detail"]
    client.credentials(HTTP_AUTHORIZATION="Bearer sk-aut-not-a-real-key")
    assert client.get("/api/providers/").status_code == 401
    assert client.post("/v1/chat/completions", {}, format="json").status_code == 401


def test_the_token_endpoint_throttles_password_guessing(settings, make_user):
    settings.AUTH_TOKEN_RATE_LIMIT_PER_MINUTE = 3
    make_user("target", perms=("routing_view",))
    client = APIClient()
    statuses = [obtain(client, "target", f"guess-{i}").status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert int(obtain(client, "target").headers["Retry-After"]) >= 1  # even the right one waits


def test_a_jwt_calls_the_gateway(make_user, demo_catalogue):
    make_user("caller", perms=("ai_execute",))
    client = APIClient()
    access = obtain(client, "caller").json()["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = client.post(
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"]


def test_a_session_cookie_cannot_call_the_gateway_without_the_csrf_token(admin_user, sim):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert sim.all_stats() == {}


def test_metrics_token_protects_metrics(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200
