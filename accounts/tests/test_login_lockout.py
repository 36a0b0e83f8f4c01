"""Admin login lockout (django-axes): per username and address, unlocked by a command."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(
        "operator", password="the-right-one", is_staff=True
    )


def log_in(client, password, address="10.0.0.1", username="operator"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_five_failures_lock_the_username_from_that_address_even_for_the_right_password(
    client, operator, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200  # the form again, with its error
    locked = log_in(client, "wrong")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert b"axes_reset_username" in locked.content

    # the right password is refused while locked
    assert log_in(client, "the-right-one").status_code == 429
    assert "_auth_user_id" not in client.session

    # the same user from another address, and another user from this one, are not locked
    assert log_in(client, "the-right-one", address="10.0.0.2").status_code == 302


def test_a_stranger_cannot_lock_out_the_administrator_elsewhere(client, operator, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        log_in(client, "guess", address="203.0.113.9")
    assert log_in(client, "the-right-one", address="10.0.0.1").status_code == 302


def test_the_unlock_command_lets_the_user_in_again(client, operator, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong")
    assert log_in(client, "the-right-one").status_code == 429

    call_command("axes_reset_username", "operator")

    assert log_in(client, "the-right-one").status_code == 302


def test_the_jwt_endpoint_is_locked_too(api_client, operator, settings):
    settings.AUTH_TOKEN_RATE_LIMIT_PER_MINUTE = 0  # the lockout, not the throttle

    def token(password):
        return api_client.post(
            "/api/auth/token/",
            {"username": "operator", "password": password},
            format="json",
            REMOTE_ADDR="10.0.0.7",
        )

    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert token("wrong").status_code == 401
    assert token("the-right-one").status_code in (401, 429)
    call_command("axes_reset_ip", "10.0.0.7")
    assert token("the-right-one").status_code == 200
