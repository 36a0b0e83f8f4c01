"""Browser tests: Playwright for Python driving Debian's chromium (the apt package; Playwright's
own browser download is not reachable here) against a live server of the project.

Every test saves a full-page screenshot at 1280 px under var/screenshots/ (CI keeps it as an
artefact). In CI a missing chromium fails the run; elsewhere these tests are skipped.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings

from analytics.schedules import install_default_schedules

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "pw-browser-123"


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        message = f"no chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request, live_server, settings):
    """A fresh 1280 px wide page; a full-page screenshot of it is saved after the test,
    whatever the outcome."""
    settings.SESSION_COOKIE_SECURE = False  # the live server speaks plain HTTP
    settings.CSRF_COOKIE_SECURE = False
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.base_url = live_server.url
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def operator(django_user_model, demo_catalogue):
    """A superuser with a password, on the demo catalogue (providers at the simulator)."""
    install_default_schedules(apps)
    return django_user_model.objects.create_superuser("operator", "operator@example.com", PASSWORD)


def log_in(page, username="operator", password=PASSWORD):
    page.goto(f"{page.base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
