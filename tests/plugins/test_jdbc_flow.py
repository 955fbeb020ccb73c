"""The example flows of flows/ for SQL, notifications and PurgeKV: they load, and the embedded-SQL one
runs through the runtime."""
from __future__ import annotations

from pathlib import Path

from orchestrator.plugins.core.storage import ion_loads

from .test_jdbc import pg_url  # noqa: F401 - the module's PostgreSQL database fixture

FLOWS = Path(__file__).resolve().parents[2] / "flows"
EXAMPLES = ("sql_duckdb_sqlite.yaml", "sql_postgres.yaml", "notifications.yaml", "purge_kv.yaml")


def test_example_flows_validate() -> None:
    from orchestrator.engine.flow import parse_flow

    for name in EXAMPLES:
        flow = parse_flow((FLOWS / name).read_text())
        assert flow.tasks, name


def test_embedded_sql_example_runs(run_flow, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    # the stored file is read back inside the execution: workers may run in other processes
    source = (FLOWS / "sql_duckdb_sqlite.yaml").read_text() + """  - id: check
    type: io.kestra.plugin.core.output.OutputValues
    values:
      stored: "{{ read(outputs.duckdb.uri) }}"
"""
    execution = run_flow(source)
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["cheapest"] == {"row": {"name": "pen", "price": 1.5}, "size": 1}
    assert outputs["duckdb"]["size"] == 2
    rows = ion_loads(outputs["check"]["values"]["stored"])
    assert [(r["customer"], r["total"], r["orders"]) for r in rows] == [("ada", 19.75, 2), ("grace", 4.0, 1)]


TIMEOUT_FLOW = """
id: slow-sql
namespace: company.team
tasks:
  - id: slow
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: "{pg_url}"
    username: postgres
    sql: SELECT pg_sleep(60)
    timeout: PT1S
"""


def test_a_task_timeout_cancels_the_query(run_flow, settings, tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    from flows_app.models import LogEntry

    settings.MEDIA_ROOT = str(tmp_path)
    execution = run_flow(TIMEOUT_FLOW.format(pg_url=pg_url), timeout=30)
    assert execution.state.current == "FAILED"
    messages = list(LogEntry.objects.filter(execution_id=execution.id, level="ERROR").values_list("message", flat=True))
    assert "Timeout after PT1S" in messages


def test_flows_directory_loads(db) -> None:
    # `make run` deploys flows/: examples needing a server or secrets must still load
    from flows_app.services import deploy_directory

    deployed = {(d.parsed.namespace, d.parsed.id) for d in deploy_directory(str(FLOWS))}
    assert {("company.team.sql", "sql-embedded"), ("company.team.sql", "sql-postgres"),
            ("company.team.monitoring", "failure-alerts"), ("system", "purge-kv")} <= deployed
