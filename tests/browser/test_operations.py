"""Operating the router in a browser: a provider broken in the simulator shows as failing on
the dashboard and on its page; the rollback page changes where traffic goes; repeated wrong
passwords lock the login."""

import pytest
import requests

from .conftest import PASSWORD, SCREENSHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def chat(server_url, key, model="gpt-4o", **extra):
    response = requests.post(
        f"{server_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=30,
    )
    return response


def test_a_provider_broken_in_the_simulator_shows_failing(page, operator, routed_key, sim):
    # given: openai answers 503 to everything, through the simulator's control API
    fault = requests.put(
        f"{sim.url}/_sim/faults/openai", json={"error_rate": 1.0, "error_status": 503}, timeout=5
    )
    assert fault.status_code == 200
    answers = [chat(page.base_url, routed_key, model="gpt-4o") for _ in range(6)]
    assert all(
        a.headers.get("X-Auterity-Provider") != "openai" or a.status_code >= 500 for a in answers
    )

    # when: the operator opens the dashboard (its default range fits the fresh traffic)
    log_in(page)
    page.goto(f"{page.base_url}/admin/analytics/routinganalytics/dashboard/")

    # then: openai's row shows its failed attempts, by error type
    row = page.locator(".dash-table tr", has_text="openai").first
    row.wait_for()
    assert "upstream_error" in row.inner_text()
    assert page.locator(".dash-tile.dash-bad").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "dashboard_with_failing_openai.png"), full_page=True)

    # and its page says so, next to the probes' view
    page.goto(f"{page.base_url}/admin/providers/provider/openai/change/")
    failed = page.locator("#provider-failed-attempts")
    assert failed.inner_text().startswith("6") or int(failed.inner_text().split()[0]) >= 6
    assert "100.0 %" in failed.inner_text()
    assert "Circuit breaker" in page.locator("#provider-health").inner_text()


def test_the_rollback_page_changes_where_traffic_goes(
    page, operator, routed_key, cost_optimization_everywhere
):
    def served():
        answer = chat(page.base_url, routed_key, metadata={"priority": "batch"})
        return answer.headers["X-Auterity-Provider"], answer.headers["X-Auterity-Model"]

    # given: routing sends gpt-4o elsewhere
    assert served() != ("openai", "gpt-4o")

    # when: the operator rolls back in the admin
    log_in(page)
    page.goto(f"{page.base_url}/admin/routing/flagrollback/run/")
    page.click("input[name=rollback]")

    # then: the page lists what changed, and gpt-4o goes to its default provider again
    result = page.locator("#rollback-result").inner_text()
    assert "Rolled back: 5 changes" in result
    assert "flag routing_policies: everyone None -> False" in result
    assert served() == ("openai", "gpt-4o")
    page.screenshot(path=str(SCREENSHOTS / "rollback_done.png"), full_page=True)

    # and forward again
    page.click("input[name=rollforward]")
    assert "Rolled forward: 5 changes" in page.locator("#rollback-result").inner_text()
    assert served() != ("openai", "gpt-4o")


def test_repeated_wrong_passwords_lock_the_login(page, operator, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(page, password="not-the-password")
        assert page.locator(".errornote").is_visible()
    log_in(page, password=PASSWORD)  # the right one, too late
    assert "Too many failed logins" in page.locator("#lockout").inner_text()
    assert "/admin/login/" in page.url
