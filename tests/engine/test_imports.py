"""One dependency direction, provable.

* The engine is pure: importing any engine module in a fresh interpreter loads no Django, Celery,
  kombu or runtime module.
* No two top-level packages of ``orchestrator.engine`` and ``orchestrator.plugins`` import each
  other at module level (the engine reaches the plugins only through the registry loader).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _engine_modules() -> list[str]:
    engine = ROOT / "orchestrator" / "engine"
    modules = []
    for path in sorted(engine.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(".".join(parts))
    return modules


FORBIDDEN = ("django", "celery", "kombu", "orchestrator.runtime", "flows_app", "storage_app", "secrets_app",
             "rest_framework", "django_celery_beat")


_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", _engine_modules())
def test_engine_module_loads_no_framework(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE, module], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert module in loaded
    impure = [name for name in loaded if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert impure == [], f"import {module} loads {impure}"


def test_the_purity_probe_sees_a_framework() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE, "orchestrator.celery"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "celery" in json.loads(result.stdout.strip().splitlines()[-1])


def _top_level_imports(path: Path, module: str) -> set[str]:
    """Modules imported at module level by ``module`` (``if TYPE_CHECKING`` blocks excluded),
    resolved absolutely; ``module`` is the file's dotted name (``a.b.__init__`` for a package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                out.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    prefix = ".".join(base[: len(base) - node.level])
                    target = f"{prefix}.{node.module}" if node.module else prefix
                    out.add(target)
                    if not node.module:
                        out.update(f"{prefix}.{alias.name}" for alias in node.names)
                else:
                    out.add(node.module or "")
            elif isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
    visit(tree.body)
    return out


def _packages() -> dict[str, list[Path]]:
    """The units of the graph: each subpackage of the engine and of the plugins as a whole
    (``orchestrator.engine.expressions``, ``orchestrator.plugins.core``), each plain module of the
    engine on its own (``orchestrator.engine.executor``), and the package ``__init__`` modules."""
    out: dict[str, list[Path]] = {}
    for root in ("engine", "plugins"):
        base = ROOT / "orchestrator" / root
        for path in base.rglob("*.py"):
            relative = path.relative_to(base).parts
            if len(relative) > 1:
                name = f"orchestrator.{root}.{relative[0]}"
            elif relative[0] == "__init__.py":
                name = f"orchestrator.{root}"
            else:
                name = f"orchestrator.{root}.{path.stem}"
            out.setdefault(name, []).append(path)
    return out


def _package_of(module: str, packages: dict[str, list[Path]]) -> str | None:
    best = None
    for name in packages:
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def test_no_two_packages_import_each_other() -> None:
    packages = _packages()
    edges: dict[str, set[str]] = {name: set() for name in packages}
    for name, paths in packages.items():
        for path in paths:
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for target in _top_level_imports(path, dotted):
                other = _package_of(target, packages)
                if other is not None and other != name:
                    edges[name].add(other)
    engine = {name for name in edges if name.startswith("orchestrator.engine")}
    reaching = sorted(name for name in engine if any(t.startswith("orchestrator.plugins") for t in edges[name]))
    assert reaching == [], f"engine modules importing the plugins at module level: {reaching}"
    mutual = sorted({tuple(sorted((a, b))) for a, targets in edges.items() for b in targets if a in edges[b]})
    assert mutual == [], f"packages importing each other: {mutual}"


def test_the_import_reader_sees_module_level_imports_only(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nfrom . import states\nfrom ..plugins import core\n"
                      "if TYPE_CHECKING:\n    from .executor import Step\n"
                      "def later():\n    from orchestrator.runtime import tasks\n")
    found = _top_level_imports(sample, "orchestrator.engine.sample")
    assert found == {"typing", "orchestrator.engine", "orchestrator.engine.states", "orchestrator.plugins"}
