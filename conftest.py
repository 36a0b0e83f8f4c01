"""Fixtures shared by every app's tests."""

import pytest
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2's deliberate slowness (~1 s a hash here) buys nothing in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def admin_client_api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client
