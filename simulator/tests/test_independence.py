"""The simulator is a fake upstream: it must not import the product it stands in front of."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
PRODUCT = {"auterity", "accounts", "providers", "routing", "analytics", "core", "gateway"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_simulator_imports_nothing_from_the_product():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_roots(path) & PRODUCT)
        for path in PACKAGE.rglob("*.py")
        if "tests" not in path.relative_to(PACKAGE).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}
