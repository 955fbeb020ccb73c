"""A task type's behaviour lives on its class: no production module outside ``orchestrator/plugins``
names a Kestra task, trigger or condition type (``io.kestra.plugin...``) in a string; the code that
needs one reads it from the class (``Schedule.type``) or asks the class (``task.plugin.pauses``)."""
from __future__ import annotations

import ast
from pathlib import Path

from orchestrator.engine.plugins import registered_types

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("orchestrator", "flows_app", "storage_app", "secrets_app")
#: modules allowed to name type strings, with the reason
ALLOWED = {
    # test tooling shipped in the package for now (it leaves the package): its sample flows name types
    "orchestrator/conformance/",
}
#: prefixes of Kestra's task, trigger and condition type names (current and legacy spellings)
TYPE_PREFIXES = ("io.kestra.plugin.", "io.kestra.core.tasks.", "io.kestra.core.models.conditions.types.")


def _production_files() -> list[Path]:
    files = []
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("orchestrator/plugins/") or "/migrations/" in relative:
                continue
            if any(relative.startswith(prefix) for prefix in ALLOWED):
                continue
            files.append(path)
    return files


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (prose may name types)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _type_strings(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if text in names or text.startswith(TYPE_PREFIXES):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    return hits


def test_no_core_type_name_outside_plugins() -> None:
    names = {name for name in registered_types()}
    assert len(names) > 100  # the registry loaded: the check below means something
    hits = [hit for path in _production_files() for hit in _type_strings(path, names)]
    assert hits == [], "type names belong on the plugin classes:\n" + "\n".join(hits)


def test_the_type_name_check_finds_a_type_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Mentions io.kestra.plugin.core.log.Log in prose."""\n'
                      'LOG = "io.kestra.plugin.core.log.Log"\nOTHER = "io.kestra.plugin.core." + "flow.If"\n')
    hits = [hit.split(": ", 1)[1] for hit in _type_strings_at(sample)]
    assert hits == ["'io.kestra.plugin.core.log.Log'", "'io.kestra.plugin.core.'"]


def _type_strings_at(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [f"{path.name}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and node.value.startswith(TYPE_PREFIXES)]


def test_the_plugin_literals_spell_the_engine_constants() -> None:
    # pydantic needs Literal types; they must not drift from the one set of constants
    from typing import get_args

    from orchestrator.engine import levels, states
    from orchestrator.plugins.core._common import Level, StateName

    assert get_args(Level) == levels.LEVELS
    assert frozenset(get_args(StateName)) == states.ALL_STATES
