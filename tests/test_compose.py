"""compose.yaml: valid for Compose (Debian's docker-compose validates it against the Compose
specification's schema, offline), and wired as docs/deployment.md says: every Auterity role
from one image, migrations before anything serves, one beat, stops that leave the web server
time to drain, Prometheus and Grafana given the project's own alert rules and dashboard."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_ROLES = {"migrate": ["migrate"], "web": ["web"], "worker": ["worker"], "beat": ["beat"]}

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (.ci/run installs Debian's)",
)


@pytest.fixture(scope="module")
def compose():
    """The file as Compose resolves it (anchors merged, defaults interpolated), simulator
    profile on."""
    result = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "--profile", "simulator", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # none of this machine's settings leak in
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_every_role_runs_from_the_one_image(compose):
    images = {compose[name]["image"] for name in [*APP_ROLES, "simulator"]}
    assert images == {"localhost/auterity:dev"}
    for name, command in APP_ROLES.items():
        assert compose[name]["command"][: len(command)] == command
        assert compose[name]["build"]["dockerfile"] == "deploy/container/Dockerfile"
        assert compose[name]["read_only"] is True
    assert compose["simulator"]["profiles"] == ["simulator"]


def test_nothing_serves_before_the_migrations_and_there_is_one_beat(compose):
    assert compose["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert compose[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert compose[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert compose["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert compose["beat"]["deploy"]["replicas"] == 1


def test_the_app_reaches_the_stores_by_their_service_names(compose):
    env = compose["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://auterity:")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CACHE_URL"].startswith("redis://redis:6379/")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert env["PROVIDER_SIMULATOR_URL"] == "http://simulator:9100"
    # Prometheus scrapes web:8000 by that name: Django must accept it as a host
    assert "web" in env["ALLOWED_HOSTS"].split(",")


def test_stops_leave_the_web_server_its_graceful_timeout(compose):
    # WEB_GRACEFUL_TIMEOUT defaults to 60 s (auterity/server.py); compose says 1m15s
    for name in ("web", "worker"):
        assert compose[name]["stop_grace_period"] in ("75s", "1m15s")


def test_prometheus_and_grafana_get_the_projects_rules_dashboard_and_datasource(compose):
    mounts = {name: _mounts(compose[name]) for name in ("prometheus", "grafana")}
    # the one rule file, mounted where the compose scrape config loads rules from
    assert mounts["prometheus"]["/etc/prometheus/rules/alerts.yml"] == (
        ROOT / "deploy/prometheus/alerts.yml"
    )
    config = yaml.safe_load(mounts["prometheus"]["/etc/prometheus/prometheus.yml"].read_text())
    assert config["rule_files"] == ["rules/*.yml"]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["web:8000"]
    # the dashboard lands in the folder the dashboards provider reads
    grafana = mounts["grafana"]
    provider = yaml.safe_load(
        grafana["/etc/grafana/provisioning/dashboards/auterity.yml"].read_text()
    )
    folder = provider["providers"][0]["options"]["path"]
    assert grafana[f"{folder}/auterity-overview.json"] == (
        ROOT / "deploy/grafana/auterity-overview.json"
    )
    datasource = yaml.safe_load(
        grafana["/etc/grafana/provisioning/datasources/auterity.yml"].read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def _mounts(service: dict) -> dict[str, Path]:
    """Container path -> the repository file mounted there (each must exist)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = (
            (volume["source"], volume["target"])
            if isinstance(volume, dict)
            else volume.split(":")[:2]
        )
        path = Path(source)
        assert path.exists(), path
        mounts[target] = path if path.is_absolute() else ROOT / path
    return mounts
