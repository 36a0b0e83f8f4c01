"""An operator creates a routing policy with the structured editor only, meets a validation
error at the field, activates the policy and sees the dry run beside the form."""

import pytest

from routing.models import RoutingPolicy

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def add_condition(page, attribute, operator, value, name=None):
    page.click("text=+ Add a condition")
    row = page.locator(".pe-conditions .pe-row").last
    row.locator(".pe-attribute").select_option(attribute)
    if name is not None:
        row.locator(".pe-name").fill(name)
    row.locator(".pe-operator").select_option(operator)
    row.locator(".pe-value").fill(value)
    return row


def test_create_a_policy_with_the_structured_editor(page, operator):
    log_in(page)
    page.goto(f"{page.base_url}/admin/routing/routingpolicy/add/")
    # the raw JSON stays hidden: the rows are the editor
    assert not page.locator("#id_conditions").is_visible()

    page.fill("#id_name", "Gold batch to the cheapest")
    page.fill("#id_priority", "5")
    add_condition(page, "metadata.", "$eq", "interactive", name="priority")
    hour = add_condition(page, "time.hour", "$lt", "30")
    hour.locator(".pe-operator").select_option("$eq")  # an hour of 30 cannot be
    hour.locator(".pe-value").fill("30")
    page.click("text=+ Add a target")
    target = page.locator(".pe-target").last
    target.locator(".pe-provider").select_option("google")
    target.locator(".pe-model").select_option("gemini-2.5-flash-lite")
    page.click("text=+ Add a target")
    second = page.locator(".pe-target").last
    second.locator(".pe-provider").select_option("openai")
    second.locator(".pe-model").select_option("gpt-4.1-nano")
    page.select_option(".pe-strategy", "cheapest")
    assert "acts as priority" in page.locator(".pe-strategy-note").inner_text()

    # when: saved with the impossible hour
    page.click("input[name=_continue]")

    # then: the error is at the conditions field, with its path, and nothing was saved
    error = page.locator(".field-conditions .errorlist")
    assert "conditions.time.hour: expected an hour" in error.inner_text()
    assert not RoutingPolicy.objects.filter(name="Gold batch to the cheapest").exists()
    # the rows are still there, as typed
    assert page.locator(".pe-conditions .pe-row").count() == 2

    # when: the hour row is removed and the policy saved
    page.locator(".pe-conditions .pe-row").nth(1).locator(".pe-remove").click()
    page.click("input[name=_continue]")

    # then: saved as a draft with exactly what the rows said
    page.wait_for_selector(".messagelist .success")
    policy = RoutingPolicy.objects.get(name="Gold batch to the cheapest")
    assert policy.conditions == {"metadata.priority": "interactive"}
    assert policy.actions == {
        "targets": [
            {"provider": "google", "model": "gemini-2.5-flash-lite"},
            {"provider": "openai", "model": "gpt-4.1-nano"},
        ],
        "strategy": "cheapest",
    }
    assert policy.status == "draft"

    # the dry run beside the form: the example request matches and goes to a target
    result = page.locator("#pe-dryrun-result")
    result.locator(".pe-verdict").wait_for()
    assert "Matches. This request would go to" in result.inner_text()

    # when: activated from the list
    page.goto(f"{page.base_url}/admin/routing/routingpolicy/")
    page.check(f"input[name=_selected_action][value='{policy.pk}']")
    page.select_option("select[name=action]", "activate_policies")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    policy.refresh_from_db()
    assert policy.status == "active"

    # and the dry run follows an edit before it is saved
    page.goto(f"{page.base_url}/admin/routing/routingpolicy/{policy.pk}/change/")
    page.locator("#pe-dryrun-result .pe-verdict").wait_for()
    page.locator(".pe-conditions .pe-row .pe-value").fill("batch")
    page.wait_for_function(
        "document.querySelector('#pe-dryrun-result').innerText.includes('Does not match')"
    )


def test_raw_json_errors_say_line_and_column(page, operator):
    log_in(page)
    page.goto(f"{page.base_url}/admin/routing/routingpolicy/add/")
    page.fill("#id_name", "Raw")
    page.locator(".field-actions .pe-raw-toggle").check()
    page.fill(
        "#id_actions",
        '{\n  "strategy": "cheapest",\n  "targets": [\n'
        '    {"provider": "openai" "model": "gpt-4o"}\n  ]\n}',
    )
    page.click("input[name=_continue]")
    error = page.locator(".field-actions .errorlist").inner_text()
    assert "Not valid JSON at line 4, column 27" in error
    # the text comes back as typed, in raw mode
    assert page.locator("#id_actions").is_visible()
    assert '"openai" "model"' in page.locator("#id_actions").input_value()

    page.fill("#id_actions", '{\n  "strategy": "cheapest",\n  "strategie": "x"\n}')
    page.click("input[name=_continue]")
    error = page.locator(".field-actions .errorlist").inner_text()
    assert "actions.strategie: unknown key 'strategie'" in error
    assert "(line 3, column 16)" in error
