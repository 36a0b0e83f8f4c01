"""auterity/wsgi.py keeps the process environment out of request.META."""

import importlib
import io
import os

from auterity import wsgi


def test_the_process_environment_is_not_part_of_a_request(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:hunter2@db/auterity")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("SERVER_NAME", "from-the-environment")
    process_env = wsgi.process_environment()
    # what a server such as granian hands over: os.environ, then the request's own keys
    environ = {
        **os.environ,
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/healthz",
        "SERVER_NAME": "from-the-environment",
        "HTTP_HOST": "gateway.example",
        "HTTP_X_REQUEST_ID": "abc",
    }
    wsgi.without_process_environment(environ, process_env)
    assert "DATABASE_URL" not in environ
    assert "HTTP_PROXY" not in environ  # not a header the client sent
    assert not (set(environ) & (process_env.keys() - {"SERVER_NAME"}))
    # the request's own keys stay, including a server key that happens to equal a variable
    assert environ == {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/healthz",
        "SERVER_NAME": "from-the-environment",
        "HTTP_HOST": "gateway.example",
        "HTTP_X_REQUEST_ID": "abc",
    }


def test_a_header_the_client_sent_stays(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    environ = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "something else"}
    wsgi.without_process_environment(environ, wsgi.process_environment())
    assert environ["HTTP_PROXY"] == "something else"


def test_the_served_application_strips_it_before_django_sees_the_request():
    # given what granian hands the app: the process environment, then the request's own keys
    environ = {
        **os.environ,
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/healthz",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    statuses = []
    response = wsgi.application(environ, lambda status, headers: statuses.append(status))
    response.close()
    assert statuses == ["200 OK"]
    # Django's request.META is this same dict
    assert "DJANGO_SETTINGS_MODULE" in wsgi._PROCESS_ENV
    assert not (environ.keys() & wsgi._PROCESS_ENV.keys())
    assert environ["HTTP_HOST"] == "testserver"


def test_variables_the_settings_read_from_dot_env_are_stripped_too(monkeypatch):
    # given the settings load .env into os.environ while the app is built (read_env), after
    # this module started importing
    def app_built_while_dot_env_is_read():
        monkeypatch.setenv("ONLY_IN_DOT_ENV", "s3cret-from-.env")
        return django_application

    django_application = wsgi._django_application
    monkeypatch.setattr("django.core.wsgi.get_wsgi_application", app_built_while_dot_env_is_read)
    reloaded = importlib.reload(wsgi)
    try:
        # when a request arrives with it, as granian copies os.environ after the app is built
        environ = {**os.environ, "REQUEST_METHOD": "GET"}
        reloaded.without_process_environment(environ)
        # then it is gone
        assert "ONLY_IN_DOT_ENV" not in environ
    finally:
        monkeypatch.undo()
        importlib.reload(wsgi)
