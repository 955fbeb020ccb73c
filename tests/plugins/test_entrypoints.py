"""Task types of installed packages (entry-point group ``celestra.plugins``).

The example package is really installed (``pip install --no-deps --target``) and a separate process,
with it on its ``PYTHONPATH``, validates and runs a flow using its task through the local runtime.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.engine.plugin_entrypoints import PluginLoadError, load_entry_point_plugins

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples" / "celestra-plugin-example"

FLOW = """\
id: words
namespace: company.team
tasks:
  - id: count
    type: com.example.text.WordCount
    text: "the cat and the hat and the bat"
    top: 2
  - id: again
    type: com.example.WordCount
    from: "{{ outputs.count.uri }}"
outputs:
  - id: top
    type: JSON
    value: "{{ outputs.count.top }}"
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return target


def env_with(path: Path, var_dir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT)]), "CELESTRA_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "orchestrator.settings", "DATABASE_URL": f"sqlite:///{var_dir}/db.sqlite3",
            "CELERY_BROKER_URL": "memory://localhost/"}


def test_installed_package_registers_and_runs_its_task(installed: Path, tmp_path: Path) -> None:
    flow = tmp_path / "words.yaml"
    flow.write_text(FLOW)
    env = env_with(installed, tmp_path)
    validated = subprocess.run([sys.executable, str(ROOT / "manage.py"), "flow", "validate", str(flow)], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=120)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    ran = subprocess.run([sys.executable, str(ROOT / "manage.py"), "flow", "test", str(flow), "--json"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    execution = json.loads(ran.stdout[ran.stdout.index("{"):])
    assert execution["state"]["current"] == "SUCCESS", ran.stdout
    runs = {run["taskId"]: run for run in execution["taskRunList"]}
    assert runs["count"]["outputs"]["words"] == 8 and runs["count"]["outputs"]["distinct"] == 5
    assert runs["count"]["outputs"]["top"] == ["the", "and"]
    # the second task read the JSON file the first one wrote: {"the": 3, "and": 2}
    assert runs["again"]["outputs"]["words"] == 4
    assert execution["outputs"]["top"] == ["the", "and"]


def test_without_the_package_the_type_is_unknown(tmp_path: Path) -> None:
    flow = tmp_path / "words.yaml"
    flow.write_text(FLOW)
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "flow", "validate", str(flow)], cwd=tmp_path,
                          env=env_with(tmp_path, tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "com.example.text.WordCount" in done.stdout + done.stderr


def make_package(root: Path, name: str, module_source: str) -> None:
    """A package installed by hand: its module and a dist-info with an entry point."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[celestra.plugins]\nmain = {name}\n")


def test_a_failing_entry_point_names_its_package(tmp_path: Path) -> None:
    make_package(tmp_path, "broken_plugin", "raise RuntimeError('boom at import')\n")
    script = ("from orchestrator.engine.plugins import lookup\n"
              "lookup('io.kestra.plugin.core.log.Log')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env_with(tmp_path, tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Plugin package broken_plugin 1.0, entry point 'main = broken_plugin' failed to load" in done.stderr
    assert "RuntimeError: boom at import" in done.stderr


def test_entry_points_giving_classes_and_bad_values(tmp_path: Path) -> None:
    import importlib.metadata

    make_package(tmp_path, "class_plugin", """\
        from orchestrator.plugins.sdk import RUNNABLE, Props, Task

        class Hello(Task):
            type = "com.example.test.Hello"
            kind = RUNNABLE

            class Props(Props):
                pass

            def run(self, ctx):
                return {"hello": "world"}

        NOT_A_PLUGIN = 42
        """)
    sys.path.insert(0, str(tmp_path))
    try:
        ep = importlib.metadata.EntryPoint("hello", "class_plugin:Hello", "celestra.plugins")
        assert load_entry_point_plugins([ep]) == ["com.example.test.Hello"]
        from orchestrator.engine.plugins import lookup

        assert lookup("com.example.test.Hello").__name__ == "Hello"
        bad = importlib.metadata.EntryPoint("bad", "class_plugin:NOT_A_PLUGIN", "celestra.plugins")
        with pytest.raises(PluginLoadError, match="entry point 'bad = class_plugin:NOT_A_PLUGIN'.*got int"):
            load_entry_point_plugins([bad])
    finally:
        from orchestrator.engine import plugins

        plugins._REGISTRY.pop("com.example.test.Hello", None)  # leave the registry as the other tests know it
        sys.path.remove(str(tmp_path))
        sys.modules.pop("class_plugin", None)
