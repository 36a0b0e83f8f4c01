"""The policy admin's "Simulate a request" page: an operator's dry run, through the admin."""

import json

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.services import api_key_create

pytestmark = pytest.mark.django_db

PAGE = "/admin/routing/routingpolicy/simulate/"
GPT_4O = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Write a haiku about routers."}],
    "max_tokens": 40,
}


@pytest.fixture
def enterprise_user(django_user_model):
    user = django_user_model.objects.create_user("ent", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    return user


def simulate(client, body, **fields):
    data = {"request_json": body if isinstance(body, str) else json.dumps(body), **fields}
    return client.post(PAGE, data)


def test_the_policy_list_links_to_the_dry_run(admin_client):
    page = admin_client.get("/admin/routing/routingpolicy/")
    assert page.status_code == 200
    assert f'href="{PAGE}"'.encode() in page.content
    form = admin_client.get(PAGE)
    assert form.status_code == 200
    assert b'name="request_json"' in form.content
    assert form.context["result"] is None


def test_the_page_shows_the_same_decision_as_the_api_and_calls_no_provider(
    admin_client, client, enterprise_user, cost_optimization_everywhere, sim
):
    # given: an application key of an enterprise user, and the API's dry run for it
    key, raw_key = api_key_create(user=enterprise_user, name="crm", scopes=["routing:view"])
    api = client.post(
        "/api/routing/simulate",
        data=json.dumps(GPT_4O),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_key}", "X-Request-ID": "replay-me-1"},
    )
    assert api.status_code == 200, api.content
    # when: the operator pastes the same request as that key, with the request id it got
    page = simulate(admin_client, GPT_4O, api_key=key.pk, request_id=api.json()["request_id"])
    # then: the same answer, from the same function
    assert page.status_code == 200
    assert page.context["result"] == api.json()
    decision = page.context["result"]["decision"]
    assert decision["policy_name"] == "GPT-4o class: cheapest equivalent"
    assert (decision["targets"][0]["provider_id"], decision["targets"][0]["model"]) == (
        "openai",
        "gpt-4.1",
    )
    assert (decision["baseline"]["provider_id"], decision["baseline"]["model"]) == (
        "openai",
        "gpt-4o",
    )
    # and the operator sees it: policy, targets in order with costs, baseline, flags, caller
    html = page.content.decode()
    assert "GPT-4o class: cheapest equivalent" in html
    targets = html[html.index('id="targets"') : html.index("<h2>Dropped targets")]
    order = [f"<td>{t['provider_id']}</td><td>{t['model']}</td>" for t in decision["targets"]]
    positions = [targets.index(cell) for cell in order]
    assert positions == sorted(positions)
    assert "cheapest: expected $" in targets
    assert f"{decision['targets'][0]['expected_cost']:.7f}" in targets
    assert "cost_optimization: <b>on</b>" in html
    assert "ent with key crm" in html
    assert sim.all_stats() == {}  # nothing reached any provider


def test_a_native_prompt_with_metadata_as_a_chosen_user_shows_dropped_targets(
    admin_client, enterprise_user, cost_optimization_everywhere
):
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is on this receipt?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/r.png"}},
                ],
            }
        ],
        "metadata": {"priority": "batch"},
    }
    page = simulate(admin_client, body, user=enterprise_user.pk)
    assert page.status_code == 200, page.context["form"].errors
    result = page.context["result"]
    assert (
        result["decision"]["policy_name"] == "Batch jobs on the cheapest small model (downgrades)"
    )
    assert result["required_capabilities"] == ["vision"]
    dropped = {(d["provider_id"], d["model"]): d["reason"] for d in result["decision"]["dropped"]}
    assert dropped[("deepseek", "deepseek-chat")] == "lacks capability vision"
    html = page.content.decode()
    assert "<td>deepseek</td><td>deepseek-chat</td><td>lacks capability vision</td>" in html
    assert "groups: enterprise" in html

    native = simulate(
        admin_client,
        {"prompt": "Tag these tickets.", "metadata": {"priority": "batch"}},
        user=enterprise_user.pk,
    )
    assert native.context["result"]["decision"]["policy_name"] == (
        "Batch jobs on the cheapest small model (downgrades)"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "Not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"model": "gpt-4o"}), "messages:"),
        (json.dumps({"model": "gpt-4o", "prompt": "hi", "temperature": "hot"}), "temperature:"),
        (json.dumps({"model": "no-such-model", "prompt": "hi"}), "does not exist"),
    ],
)
def test_a_bad_request_is_a_form_error_not_a_decision(admin_client, demo_catalogue, body, message):
    page = simulate(admin_client, body)
    assert page.status_code == 200
    assert page.context["result"] is None
    errors = page.context["form"].errors["request_json"]
    assert any(message in e for e in errors), errors
    assert b'class="errorlist' in page.content


def test_user_and_key_together_is_a_form_error(admin_client, enterprise_user, demo_catalogue):
    key, _ = api_key_create(user=enterprise_user, name="crm", scopes=["ai:execute"])
    page = simulate(admin_client, GPT_4O, user=enterprise_user.pk, api_key=key.pk)
    assert page.context["result"] is None
    assert page.context["form"].non_field_errors()


def test_only_staff_who_may_view_policies_can_simulate(client, django_user_model, demo_catalogue):
    staff = django_user_model.objects.create_user("clerk", password="pw-123456", is_staff=True)
    client.force_login(staff)
    assert client.get(PAGE).status_code == 403
    assert simulate(client, GPT_4O).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_routingpolicy"))
    assert client.get(PAGE).status_code == 200
    assert simulate(client, GPT_4O).context["result"]["decision"]["targets"]
