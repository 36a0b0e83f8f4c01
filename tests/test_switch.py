"""deploy/k8s/switch, the blue/green switch: its dry run prints the kubectl changes step by
step (each a JSON patch that moves the VirtualService's weights and refuses to apply to routes
laid out otherwise), its conditions are the seed's alerts from deploy/prometheus/alerts.yml
with the colour's label, and against a real Prometheus scraping the real web server it goes
all the way while the new colour is healthy and aborts back to the old one when the new
colour's requests fail."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from providers.models import Provider
from tests.subprocess_env import free_port

ROOT = Path(__file__).resolve().parent.parent
SWITCH = ROOT / "deploy/k8s/switch"
HELLO = [{"role": "user", "content": "Which colour am I on?"}]


def load_switch():
    loader = importlib.machinery.SourceFileLoader("k8s_switch", str(SWITCH))
    spec = importlib.util.spec_from_loader("k8s_switch", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run_switch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SWITCH), *args], capture_output=True, text=True, timeout=300
    )


def commands(output: str) -> list[list[str]]:
    return [
        shlex.split(line.strip()[2:]) for line in output.splitlines() if line.strip()[:2] == "$ "
    ]


def apply_json_patch(document: dict, patch: list[dict]) -> dict:
    """The two JSON patch operations the switch uses (RFC 6902 test and replace)."""
    document = json.loads(json.dumps(document))
    for operation in patch:
        *parents, last = operation["path"].strip("/").split("/")
        target = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key = int(last) if isinstance(target, list) else last
        if operation["op"] == "test":
            assert target[key] == operation["value"], operation
        else:
            target[key] = operation["value"]
    return document


def committed_virtual_service() -> dict:
    return yaml.safe_load((ROOT / "deploy/k8s/istio/virtualservice.yaml").read_text())


def weights(virtual_service: dict) -> dict[str, int]:
    return {
        destination["destination"]["subset"]: destination["weight"]
        for destination in virtual_service["spec"]["http"][0]["route"]
    }


def test_dry_run_prints_each_step_and_changes_nothing():
    result = run_switch("--to", "green", "--dry-run", "--hold", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    steps = commands(result.stdout)
    assert all(command[:3] == ["kubectl", "-n", "auterity"] for command in steps)
    verbs = [command[3] for command in steps]
    assert verbs == ["rollout", "wait", "patch", "patch", "patch", "get", "set"]
    assert steps[0][4:6] == ["status", "deployment/auterity-web-green"]
    assert "job/auterity-migrate-green" in steps[1]

    # each patch applies to the committed VirtualService and moves green to 10, 50, 100 %
    virtual_service = committed_virtual_service()
    assert weights(virtual_service) == {"blue": 100, "green": 0}
    seen = []
    for command in steps[2:5]:
        assert command[4:7] == ["virtualservice", "auterity-web", "--type=json"]
        virtual_service = apply_json_patch(virtual_service, json.loads(command[-1]))
        seen.append(weights(virtual_service))
    assert seen == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
    ]
    # beat ends on the new colour's release
    assert steps[-1][4:6] == ["image", "deployment/auterity-beat"]
    # the conditions it would watch, for the new colour
    watched = re.findall(r"would watch (\w+) for", result.stdout)
    assert set(watched) == {"HighErrorRate", "RoutingLatencyHigh", "CostOptimizationFailure"}


def test_a_patch_refuses_routes_laid_out_otherwise():
    switch = load_switch()
    swapped = committed_virtual_service()
    route = swapped["spec"]["http"][0]["route"]
    route.reverse()  # green first
    with pytest.raises(AssertionError):
        apply_json_patch(swapped, switch.weight_patch({"green": 10, "blue": 90}))


def test_the_conditions_are_the_seed_alerts_with_the_colours_label(tmp_path):
    switch = load_switch()
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    conditions = switch.conditions("green", "version")
    assert set(conditions) == {"HighErrorRate", "RoutingLatencyHigh", "CostOptimizationFailure"}
    for name, condition in conditions.items():
        # the alert's expression, word for word, plus the colour on every ai_* series
        assert condition.replace('version="green",', "").replace('{version="green"}', "") == (
            " ".join(exprs[name].split())
        )
        series = re.findall(r"\bai_\w+(?:\{[^}]*\})?", condition)
        assert series and all('version="green"' in selector for selector in series)
    if shutil.which("promtool"):  # and they are valid PromQL
        path = tmp_path / "conditions.yml"
        rule_list = [{"record": f"check:{n}", "expr": e} for n, e in conditions.items()]
        path.write_text(yaml.safe_dump({"groups": [{"name": "switch", "rules": rule_list}]}))
        check = subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_without_prometheus_only_a_dry_run_is_allowed():
    result = run_switch("--to", "green")
    assert result.returncode == 2
    assert "--prometheus is required" in result.stdout


# --- against a real Prometheus


@pytest.fixture
def prometheus(tmp_path):
    """Start Prometheus (Debian's) scraping whatever targets the test gives, every second,
    labelled version="green" as the ServiceMonitor labels a colour's pods."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (.ci/run installs Debian's)")
    started = []

    def start(target: str) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "auterity",
                            "static_configs": [
                                {"targets": [target], "labels": {"version": "green"}}
                            ],
                        }
                    ],
                }
            )
        )
        log = (tmp_path / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    return url
            except requests.RequestException:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                "Prometheus did not start"
            )
            time.sleep(0.2)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def scraped(url: str, expr: str) -> float:
    result = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    return float(result["data"]["result"][0]["value"][1]) if result["data"]["result"] else 0.0


def traffic(server_url: str, prometheus_url: str, key: str, expect: int, burst: int = 20) -> None:
    """Two bursts of requests, each seen by two scrapes, so that rate() sees counters grow. A
    rate over [5m] is the increase over 300 s: HighErrorRate's volume guard (0.05/s) needs an
    increase of more than 15 between the first and the last sample."""
    for bursts in (1, 2):
        for _ in range(burst):
            response = requests.post(
                f"{server_url}/v1/chat/completions",
                json={"model": "claude-haiku-4-5", "messages": HELLO, "max_tokens": 5},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert response.status_code == expect, response.text
        deadline = time.monotonic() + 30
        seen = 'sum(ai_routing_requests_total{version="green"})'
        while scraped(prometheus_url, seen) < burst * bursts:
            assert time.monotonic() < deadline, "Prometheus never saw the requests"
            time.sleep(0.3)
        time.sleep(2.5)  # two more scrapes


real_database = pytest.mark.django_db(transaction=True)


def switch_after_traffic(web_server, prometheus, key: str, expect: int):
    """The web server scraped by Prometheus as the green colour, traffic answered `expect`,
    then a dry-run switch to green that reads the conditions (2 s per step)."""
    server = web_server()
    prometheus_url = prometheus(server.url.removeprefix("http://"))
    traffic(server.url, prometheus_url, key, expect=expect)
    return run_switch(
        "--to", "green", "--dry-run", "--prometheus", prometheus_url,
        "--hold", "2", "--interval", "1",
    )  # fmt: skip


@real_database
def test_a_healthy_new_colour_takes_all_the_traffic(
    web_server, demo_catalogue, routed_key, prometheus
):
    result = switch_after_traffic(web_server, prometheus, routed_key, expect=200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ABORT" not in result.stdout
    assert "done: green is live" in result.stdout


@real_database
def test_a_failing_new_colour_is_rolled_back_at_the_first_step(
    web_server, demo_catalogue, routed_key, sim, prometheus
):
    # given the new colour's requests fail (every provider answers 503)
    for provider in Provider.objects.all():
        sim.set_fault(
            provider.base_url.rstrip("/").rsplit("/", 1)[1], error_rate=1.0, error_status=503
        )

    # when the switch starts after some of its traffic
    result = switch_after_traffic(web_server, prometheus, routed_key, expect=502)

    # then it stops at 10 % on HighErrorRate and puts everything back on blue
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ABORT at 10%: HighErrorRate holds" in result.stdout
    patches = [
        json.loads(command[-1]) for command in commands(result.stdout) if command[3] == "patch"
    ]
    assert len(patches) == 2
    virtual_service = committed_virtual_service()
    assert weights(apply_json_patch(virtual_service, patches[0])) == {"blue": 90, "green": 10}
    assert weights(apply_json_patch(virtual_service, patches[1])) == {"blue": 100, "green": 0}
    assert "set image" not in result.stdout
