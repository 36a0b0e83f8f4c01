"""Credentials in URLs never reach the log: the production server's lines about requests that
carry a key in their query string (Django's "Unauthorized: /v1/models" line carries the
request, whose text is its full path)."""

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)

SECRETS = (
    "sk-aut-queryStringKey0123456789",
    "AIzaSyQueryStringGoogleKey012345",
    "plainTokenValue987",
)


def test_keys_in_query_strings_are_redacted_in_the_servers_log(web_server):
    server = web_server(workers=1, LOG_LEVEL="INFO", LOG_ACCESS="true")
    for url in (
        f"/v1/models?key={SECRETS[0]}",
        f"/api/providers/?api_key={SECRETS[1]}&page=1",
        f"/v1/models?token={SECRETS[2]}",
        f"/no-such-page/?access_token={SECRETS[2]}",
    ):
        answer = requests.get(server.url + url, timeout=10)
        assert answer.status_code in (401, 404)
    server.stop()
    log = server.log_text()
    assert "/v1/models" in log and "REDACTED" in log  # the lines are there, masked
    for secret in SECRETS:
        assert secret not in log
