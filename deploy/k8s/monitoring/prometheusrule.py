"""Write the Prometheus Operator's PrometheusRule from deploy/prometheus/alerts.yml, the one
source of the alert rules: `python deploy/k8s/monitoring/prometheusrule.py` rewrites
prometheusrule.yaml beside it, `--check` exits 1 when that file is not what alerts.yml gives
(tests/test_k8s.py runs it)."""

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[1] / "prometheus" / "alerts.yml"
OUTPUT = HERE / "prometheusrule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/alerts.yml by deploy/k8s/monitoring/prometheusrule.py:\n"
    "# do not edit; change alerts.yml and run the script.\n"
)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    # Multi-line expressions stay readable blocks, as in alerts.yml.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    rules = yaml.safe_load(ALERTS.read_text())
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "auterity", "labels": {"app.kubernetes.io/name": "auterity"}},
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
