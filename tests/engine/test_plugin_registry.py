"""The plugin registry: every module loads even when one fails, and the failure names it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
import orchestrator.plugins
orchestrator.plugins.__path__.append(sys.argv[1])  # one more plugin module, which fails to import
from orchestrator.engine import plugins
errors = []
for _ in range(2):  # the failure is reported on every call, not only the first
    try:
        plugins.lookup("io.kestra.plugin.core.log.Log")
    except plugins.PluginLoadError as exc:
        errors.append(str(exc))
print(json.dumps({"errors": errors, "types": len(plugins._REGISTRY),
                  "log": "io.kestra.plugin.core.log.Log" in plugins._REGISTRY}))
"""


def test_a_failing_plugin_module_is_named_and_the_others_still_load(tmp_path: Path) -> None:
    # given
    (tmp_path / "zz_broken.py").write_text("raise ImportError('needs a library that is not installed')\n")
    # when
    result = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    # then
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["errors"]) == 2
    assert report["errors"][0] == report["errors"][1]
    assert "orchestrator.plugins.zz_broken" in report["errors"][0]
    assert "needs a library that is not installed" in report["errors"][0]
    assert report["log"] and report["types"] > 100
