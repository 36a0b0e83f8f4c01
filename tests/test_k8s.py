"""deploy/k8s/: the overlays render with kubectl's kustomize (kept to what kustomize 2.0, kubectl
1.20's, understands), every Kubernetes object validates against the Kubernetes 1.30 schemas
(kubernetes-validate, offline), and the parts the blue/green switch relies on hang together:
the Istio routes, subsets, Service and labels, the colours' probes and drain, one beat, the
monitoring objects, and the PrometheusRule generated from deploy/prometheus/alerts.yml. The dev
overlay's web and simulator Deployments run under `podman kube play` and answer."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import requests
import yaml

from tests.containers import podman, podman_missing, wait_http_ok
from tests.subprocess_env import free_port

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy/k8s"
KUBERNETES_VERSION = "1.30.0"
COLOURS = ("blue", "green")
# Custom resources: no Kubernetes schema; their structure is checked below.
CUSTOM_GROUPS = {"networking.istio.io", "security.istio.io", "monitoring.coreos.com"}
SECRET_SETTINGS = {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "METRICS_TOKEN"}

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not installed (.ci/run installs Debian's kubernetes-client)",
)


@cache
def render(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in render(overlay) if doc["kind"] == kind}


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels/matchExpressions, or a Service's plain map) vs labels."""
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if not all(labels.get(key) == value for key, value in match.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "Exists" and key not in labels:
            return False
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
    return True


def web(overlay: str, colour: str) -> dict:
    return objects(overlay, "Deployment")[f"auterity-web-{colour}"]


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_overlays_render_and_validate_against_the_kubernetes_schemas(overlay):
    custom = set()
    for doc in render(overlay):
        group = doc["apiVersion"].rpartition("/")[0]
        if group in CUSTOM_GROUPS:
            custom.add(doc["kind"])
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    expected = (
        {"Gateway", "VirtualService", "DestinationRule", "PeerAuthentication"}
        | {"ServiceMonitor", "PrometheusRule"}
        if overlay == "production"
        else set()
    )
    assert custom == expected


def test_production_has_every_part_the_issue_lists():
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in render("production")}
    for colour in COLOURS:
        assert {
            ("Deployment", f"auterity-web-{colour}"),
            ("Deployment", f"auterity-worker-{colour}"),
            ("Job", f"auterity-migrate-{colour}"),
            ("Service", f"auterity-web-{colour}"),
            ("HorizontalPodAutoscaler", f"auterity-web-{colour}"),
            ("PodDisruptionBudget", f"auterity-web-{colour}"),
        } <= kinds
    assert {
        ("Deployment", "auterity-beat"),
        ("Service", "auterity-web"),
        ("ConfigMap", "auterity-config"),
        ("Namespace", "auterity"),
        ("NetworkPolicy", "auterity-web"),
        ("NetworkPolicy", "auterity-no-ingress"),
    } <= kinds
    assert all(
        doc["metadata"].get("namespace") == "auterity"
        for doc in render("production")
        if doc["kind"] != "Namespace"
    )


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_no_secret_value_is_committed(overlay):
    assert not objects(overlay, "Secret")
    for config in objects(overlay, "ConfigMap").values():
        assert not SECRET_SETTINGS & set(config["data"])
    for doc in render(overlay):
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            refs = [
                ref["secretRef"]["name"]
                for ref in container.get("envFrom", [])
                if "secretRef" in ref
            ]
            assert refs in ([], ["auterity-secrets"])
            assert not SECRET_SETTINGS & {env["name"] for env in container.get("env", [])}


@pytest.mark.parametrize("colour", COLOURS)
def test_a_colours_web_pods_probe_drain_and_run_locked_down(colour):
    deployment = web("production", colour)
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"] == ["web"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # the pod leaves the endpoints (preStop) before SIGTERM, then drains for the graceful timeout
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + int(
        env["WEB_GRACEFUL_TIMEOUT"]
    )
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # Istio's sidecar outlives the drain
    config = yaml.safe_load(
        deployment["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"]
    )
    assert int(config["terminationDrainDuration"].rstrip("s")) >= int(env["WEB_GRACEFUL_TIMEOUT"])


@pytest.mark.parametrize("overlay", ["production", "dev"])
def test_every_pod_runs_as_non_root_on_a_read_only_root_filesystem(overlay):
    for doc in render(overlay):
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            # the one place the app writes is a volume
            assert "/app/var" in {mount["mountPath"] for mount in container["volumeMounts"]}


def test_there_is_one_beat_outside_the_colours():
    beats = [
        doc
        for doc in objects("production", "Deployment").values()
        if pod_labels(doc)["app.kubernetes.io/component"] == "beat"
    ]
    assert [beat["metadata"]["name"] for beat in beats] == ["auterity-beat"]
    (beat,) = beats
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert beat["spec"]["template"]["spec"]["containers"][0]["args"] == ["beat"]


@pytest.mark.parametrize("colour", COLOURS)
def test_a_colours_service_autoscaler_budget_and_migrate_job_are_its_own(colour):
    other = next(c for c in COLOURS if c != colour)
    pods = pod_labels(web("production", colour))
    assert pods["version"] == colour
    service = objects("production", "Service")[f"auterity-web-{colour}"]
    assert selects(service["spec"]["selector"], pods)
    assert not selects(service["spec"]["selector"], pod_labels(web("production", other)))
    hpa = objects("production", "HorizontalPodAutoscaler")[f"auterity-web-{colour}"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"auterity-web-{colour}"
    pdb = objects("production", "PodDisruptionBudget")[f"auterity-web-{colour}"]
    assert selects(pdb["spec"]["selector"], pods)
    assert not selects(pdb["spec"]["selector"], pod_labels(web("production", other)))
    job = objects("production", "Job")[f"auterity-migrate-{colour}"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    # a sidecar would keep the Job running forever
    assert job["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    # the colour runs its own release
    images = {
        doc["spec"]["template"]["spec"]["containers"][0]["image"]
        for doc in render("production")
        if doc["kind"] in ("Deployment", "Job") and doc["metadata"]["name"].endswith(colour)
    }
    assert len(images) == 1


def test_istio_routes_weigh_100_between_subsets_of_the_web_service():
    (virtual_service,) = objects("production", "VirtualService").values()
    (rule,) = objects("production", "DestinationRule").values()
    (gateway,) = objects("production", "Gateway").values()
    host = objects("production", "Service")["auterity-web"]
    subsets = {subset["name"]: subset["labels"] for subset in rule["spec"]["subsets"]}

    # the DestinationRule and every route's destination name the colourless Service, which
    # selects both colours' web pods
    assert rule["spec"]["host"] == host["metadata"]["name"]
    for colour in COLOURS:
        assert selects(host["spec"]["selector"], pod_labels(web("production", colour)))
    assert host["metadata"]["name"] in virtual_service["spec"]["hosts"]
    for route in virtual_service["spec"]["http"]:
        weights = [destination.get("weight", 0) for destination in route["route"]]
        assert sum(weights) == 100
        for destination in route["route"]:
            assert destination["destination"]["host"] == host["metadata"]["name"]
            assert destination["destination"]["port"]["number"] == host["spec"]["ports"][0]["port"]
            assert destination["destination"]["subset"] in subsets
    # each subset is exactly one colour's web pods
    for name, labels in subsets.items():
        matching = [
            c for c in COLOURS if selects({"matchLabels": labels}, pod_labels(web("production", c)))
        ]
        assert matching == [name]
    # the external hosts are the Gateway's, and the Gateway is the one the routes are bound to
    gateway_hosts = {h for server in gateway["spec"]["servers"] for h in server["hosts"]}
    assert set(virtual_service["spec"]["hosts"]) - {host["metadata"]["name"]} <= gateway_hosts
    assert gateway["metadata"]["name"] in virtual_service["spec"]["gateways"]


def test_istio_settings_suit_long_ai_streams():
    (virtual_service,) = objects("production", "VirtualService").values()
    (rule,) = objects("production", "DestinationRule").values()
    for route in virtual_service["spec"]["http"]:
        # a whole stream fits in the route timeout; no per-try timeout to cut it
        assert int(route["timeout"].rstrip("s")) >= 600
        assert "perTryTimeout" not in route["retries"]
        # only failures that never reached a pod are retried: a POST that reached the gateway
        # may have cost money
        retry_on = set(route["retries"]["retryOn"].split(","))
        assert retry_on <= {"connect-failure", "refused-stream", "reset-before-request"}
    detection = rule["spec"]["trafficPolicy"]["outlierDetection"]
    # pods that fail connections are ejected, not those relaying a provider's 5xx
    assert detection["splitExternalLocalOriginErrors"] is True
    assert detection["consecutiveLocalOriginFailures"] > 0
    assert detection["consecutive5xxErrors"] == 0
    assert detection["baseEjectionTime"] and detection["maxEjectionPercent"] <= 50
    pool = rule["spec"]["trafficPolicy"]["connectionPool"]
    assert pool["http"]["maxRequestsPerConnection"] == 0
    (peer,) = objects("production", "PeerAuthentication").values()
    assert peer["spec"]["mtls"]["mode"] == "STRICT"


def test_the_service_monitor_scrapes_each_colours_pods_once_with_their_colour():
    (monitor,) = objects("production", "ServiceMonitor").values()
    services = objects("production", "Service")
    scraped = {
        name
        for name, service in services.items()
        if selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    }
    assert scraped == {f"auterity-web-{colour}" for colour in COLOURS}
    for name in scraped:
        ports = {port["name"] for port in services[name]["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports
        for label in monitor["spec"]["targetLabels"]:
            assert services[name]["metadata"]["labels"][label] in COLOURS
    assert services["auterity-web-blue"]["metadata"]["labels"][monitor["spec"]["jobLabel"]] == (
        "auterity"
    )


def test_the_prometheus_rule_is_generated_from_alerts_yml():
    check = subprocess.run(
        [sys.executable, str(K8S / "monitoring/prometheusrule.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    (rule,) = objects("production", "PrometheusRule").values()
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]


def test_network_policies_cover_every_pod():
    policies = objects("production", "NetworkPolicy")
    for doc in render("production"):
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        covering = [
            name
            for name, policy in policies.items()
            if selects(policy["spec"]["podSelector"], pod_labels(doc))
        ]
        assert covering, doc["metadata"]["name"]
    assert "ingress" not in policies["auterity-no-ingress"]["spec"]
    ports = {
        port["port"]
        for rule in policies["auterity-web"]["spec"]["ingress"]
        for port in rule["ports"]
    }
    assert ports == {8000, 15020}


# --- podman kube play


def _for_podman(docs, image: str, web_port: int, sim_port: int) -> list[dict]:
    """The dev overlay's ConfigMap and its web and simulator Deployments as podman runs them
    on this machine: host network (PostgreSQL and Redis listen on 127.0.0.1), free ports, the
    test image, and names of this run's own (podman's pods, containers and secrets are
    machine-wide; other test runs may play the same overlay at the same time). Everything else
    (probes, security context, volumes, config) as rendered."""
    kept = []
    suffix = f"-{web_port}"
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            doc = json.loads(json.dumps(doc))
            doc["metadata"]["name"] += suffix
            kept.append(doc)
        if doc["kind"] != "Deployment" or doc["metadata"]["name"] not in (
            "auterity-web-blue",
            "auterity-simulator",
        ):
            continue
        is_web = doc["metadata"]["name"] == "auterity-web-blue"
        doc = json.loads(json.dumps(doc))
        doc["metadata"]["name"] += suffix
        spec = doc["spec"]["template"]["spec"]
        spec["hostNetwork"] = True
        (container,) = spec["containers"]
        container["image"] = image
        for source in container.get("envFrom", []):
            for ref in ("configMapRef", "secretRef"):
                if ref in source:
                    source[ref]["name"] += suffix
        # podman refuses port mappings on the host network; probes name ports by number then
        del container["ports"]
        port, variable = (web_port, "WEB_BIND") if is_web else (sim_port, "SIMULATOR_PORT")
        value = f"127.0.0.1:{port}" if is_web else str(port)
        container["env"] = [e for e in container["env"] if e["name"] != variable]
        container["env"].append({"name": variable, "value": value})
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                container[probe]["httpGet"]["port"] = port
        kept.append(doc)
    return kept


@pytest.mark.skipif(podman_missing(), reason="podman is not installed (.ci/run installs it)")
@pytest.mark.django_db(transaction=True)
def test_podman_kube_play_runs_the_dev_web_and_simulator_deployments(
    container_image, container_app_env, tmp_path
):
    web_port, sim_port = free_port(), free_port()
    docs = _for_podman(render("dev"), container_image, web_port, sim_port)
    assert sorted(doc["kind"] for doc in docs) == ["ConfigMap", "Deployment", "Deployment"]
    play = tmp_path / "play.yaml"
    play.write_text(yaml.safe_dump_all(docs))
    # podman keeps a Kubernetes Secret's data (base64 values, as JSON) as a podman secret
    secret_name = f"auterity-secrets-{web_port}"
    secret = tmp_path / "secret.json"
    secret.write_text(
        json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in container_app_env.items()})
    )
    podman("secret", "rm", secret_name, check=False)
    podman("secret", "create", secret_name, str(secret))
    try:
        podman("kube", "play", str(play), timeout=180)

        class Pod:  # what wait_http_ok needs to report a failure
            def running(self):
                return True

            def logs(self):
                names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
                return "\n".join(
                    podman("logs", name, check=False).stderr[-2000:]
                    for name in names
                    if re.match(rf"auterity-(web-blue|simulator)-{web_port}-pod", name)
                )

        assert wait_http_ok(f"http://127.0.0.1:{web_port}/healthz", Pod()).json() == {
            "status": "ok"
        }
        deadline = time.monotonic() + 60
        while (
            ready := requests.get(f"http://127.0.0.1:{web_port}/readyz", timeout=5)
        ).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.5)
        wait_http_ok(f"http://127.0.0.1:{sim_port}/_sim/health", Pod())
        inspected = json.loads(podman("inspect", f"auterity-web-blue-{web_port}-pod-0-web").stdout)[
            0
        ]
        assert inspected["Config"]["User"].split(":")[0] == "10001"
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        podman("kube", "down", str(play), check=False, timeout=120)
        podman("secret", "rm", secret_name, check=False)
