"""`make run`'s last words: once the web server answers, the admin login and the demo key.

Started by the Procfile next to the services, so it prints after their start-up output
instead of scrolling away under it; it then waits quietly until honcho stops everything
(honcho stops all processes as soon as one exits).
"""

import signal
import time
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from .seed_demo import DEFAULT_ADMIN_PASSWORD


class Command(BaseCommand):
    help = "Wait for the web server, print the admin login and the demo API key, then wait."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--key-file", type=Path, default=settings.VAR_DIR / "demo-api-key")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--timeout", type=float, default=120.0)
        parser.add_argument("--no-wait", action="store_true", help="Exit after printing.")

    def handle(self, *args, **options):
        url = options["url"].rstrip("/")
        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            self.stderr.write(f"{url}/healthz did not answer within {options['timeout']:g} s")
        self.stdout.write(self.banner(url, options))
        if not options["no_wait"]:
            signal.pause()

    def banner(self, url: str, options) -> str:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            login = "no admin user: run `python manage.py seed_demo`"
        elif user.check_password(DEFAULT_ADMIN_PASSWORD):
            login = f"{user.username} / {DEFAULT_ADMIN_PASSWORD} (local use only)"
        else:
            login = f"{user.username} (the password you chose)"
        try:
            key = options["key_file"].read_text().strip()
        except OSError:
            key = f"not found in {options['key_file']}: run `python manage.py seed_demo`"
        rule = "=" * 78
        return "\n".join(
            [
                "",
                rule,
                f"  Auterity is up: {url}/",
                f"  Admin:        {url}/admin/   login {login}",
                f"  Dashboard:    {url}/admin/analytics/routinganalytics/dashboard/",
                f"  Demo API key: {key}",
                f"                (kept across runs in {options['key_file']})",
                f"  Try it:       curl -s {url}/v1/chat/completions -H 'Authorization: Bearer "
                "$KEY' \\",
                "                  -H 'Content-Type: application/json' -d '{\"model\": "
                '"gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}\'',
                rule,
                "",
            ]
        )
