"""The house's shape stays: apps import only from the layers below them (pyproject.toml,
[tool.importlinter]; docs/architecture.md), and the routing engine stays pure."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_apps_depend_downward_only_and_the_engine_is_pure():
    # A subprocess: import-linter imports nothing of ours, but grimp reads every module, and
    # its cache must not land in the checkout.
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports;"
            " sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
