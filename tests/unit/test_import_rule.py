"""Only v6ray/gateway/ may import ib_async (checked on the syntax tree, not with grep)."""

from __future__ import annotations

import ast
from pathlib import Path

import v6ray

PACKAGE = Path(v6ray.__file__).parent
ALLOWED = PACKAGE / "gateway"


def ib_async_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                node.func, "attr", "")) in ("import_module", "__import__"):
            names = [a.value for a in node.args if isinstance(a, ast.Constant)
                     and isinstance(a.value, str)]
        else:
            continue
        if any(n == "ib_async" or n.startswith("ib_async.") for n in names):
            lines.append(node.lineno)
    return lines


def test_only_the_gateway_imports_ib_async():
    offenders = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if ALLOWED not in path.parents and (lines := ib_async_imports(path))
    }
    assert offenders == {}, f"ib_async imported outside v6ray/gateway/: {offenders}"


def test_the_rule_detects_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom ib_async import IB\nimportlib.import_module('ib_async')\n")
    assert ib_async_imports(bad) == [2, 3]
