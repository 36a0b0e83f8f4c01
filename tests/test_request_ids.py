"""Every answered request has its own request-log row, keyed by the gateway's own id; the
caller's X-Request-ID is kept beside it (INTERFACES.md item 2)."""

import pytest
from openai import OpenAI

from analytics.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Hello"}]


def test_five_requests_with_one_caller_id_from_two_keys_get_five_rows(
    live_server, routed_key, demo_catalogue, django_user_model
):
    from accounts.services import api_key_create

    other_user = django_user_model.objects.create_user("other", password="pw-123456")
    _, other_key = api_key_create(user=other_user, name="other", scopes=["ai:execute"])
    answers = []
    for key in (routed_key, routed_key, routed_key, other_key, other_key):
        client = OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=HELLO,
            max_tokens=8,
            extra_headers={"X-Request-ID": "job-42"},
        )
        assert raw.http_response.status_code == 200
        answers.append(raw.headers)
    # then: five own ids, each with its row, and the caller's id echoed and kept beside
    ids = [headers["X-Request-ID"] for headers in answers]
    assert len(set(ids)) == 5
    assert {headers["X-Client-Request-ID"] for headers in answers} == {"job-42"}
    rows = RequestLog.objects.filter(request_id__in=ids)
    assert rows.count() == 5
    assert set(rows.values_list("client_request_id", flat=True)) == {"job-42"}
    assert RequestLog.objects.filter(client_request_id="job-42").count() == 5
