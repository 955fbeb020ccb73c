"""The example flows of flows/ for SQL, notifications and PurgeKV: they load, and the embedded-SQL one
runs through the runtime."""
from __future__ import annotations

from pathlib import Path

from orchestrator.plugins.core.storage import ion_loads

FLOWS = Path(__file__).resolve().parents[2] / "flows"
EXAMPLES = ("sql_duckdb_sqlite.yaml", "sql_postgres.yaml", "notifications.yaml", "purge_kv.yaml")


def test_example_flows_validate() -> None:
    from orchestrator.engine.flow import parse_flow

    for name in EXAMPLES:
        flow = parse_flow((FLOWS / name).read_text())
        assert flow.tasks, name


def test_embedded_sql_example_runs(run_flow, settings, tmp_path: Path) -> None:
    from orchestrator.runtime.platform import Platform

    settings.MEDIA_ROOT = str(tmp_path)
    execution = run_flow((FLOWS / "sql_duckdb_sqlite.yaml").read_text())
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["cheapest"] == {"row": {"name": "pen", "price": 1.5}, "size": 1}
    assert outputs["duckdb"]["size"] == 2
    platform = Platform("company.team.sql", "sql-embedded", execution.id)
    rows = ion_loads(platform.read_text(outputs["duckdb"]["uri"]))
    assert [(r["customer"], r["total"], r["orders"]) for r in rows] == [("ada", 19.75, 2), ("grace", 4.0, 1)]
