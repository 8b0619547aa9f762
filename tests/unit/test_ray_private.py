"""Ray's private modules are used in v6ray/service/ray_private.py only (a Ray upgrade
checks one file)."""

from __future__ import annotations

import ast
from pathlib import Path

import v6ray

PACKAGE = Path(v6ray.__file__).resolve().parent
PRIVATE = ("ray._private", "ray._raylet")
ALLOWED = PACKAGE / "service" / "ray_private.py"


def private_uses(source: str) -> list[str]:
    """Imports of Ray's private modules and ``ray._private...`` attribute chains."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"]
        found += [
            f"line {node.lineno}: {name}"
            for name in names
            if any(name == p or name.startswith(p + ".") for p in PRIVATE)
        ]
    return found


def test_the_checker_sees_every_form_of_private_use():
    source = (
        "import ray._private.ray_constants as c\n"
        "from ray._raylet import Config\n"
        "import ray\nx = ray._private.worker\n"
        "from ray.util.state import list_tasks\n"
    )
    assert [use.split(": ")[1] for use in private_uses(source)] == [
        "ray._private.ray_constants", "ray._raylet", "ray._private",
    ]  # fmt: skip


def test_only_ray_private_module_uses_rays_private_modules():
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != ALLOWED and (uses := private_uses(path.read_text()))
    }
    assert offenders == {}
    assert private_uses(ALLOWED.read_text()), "ray_private.py names the private uses"
