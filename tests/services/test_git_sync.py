"""A Git-synced namespace end to end on real workers: a flow syncs flows and namespace files from a local bare
repository (file:// URL), then runs a synced flow that reads a synced namespace file."""
from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

from flows_app import models
from flows_app.services import create_execution, deploy_flow, wait_for
from tests.plugins.test_git import bare_repo

SYNC = """\
id: sync
namespace: {ns}
tasks:
  - id: flows
    type: io.kestra.plugin.git.SyncFlows
    url: {url}
    targetNamespace: {ns}
    includeChildNamespaces: true
    delete: true
  - id: files
    type: io.kestra.plugin.git.SyncNamespaceFiles
    url: {url}
    namespace: {ns}
  - id: run_synced
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {ns}
    flowId: report
    wait: true
    transmitFailed: true
"""

REPORT = """\
id: report
namespace: dev
tasks:
  - id: query
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('queries/total.sql') | trim }}"
"""


def test_git_synced_namespace(runtime, transactional_db, tmp_path: Path) -> None:
    ns = f"company.git{uuid.uuid4().hex[:8]}"
    url = bare_repo(tmp_path, {"_flows/report.yml": REPORT,
                               "_flows/sub/other.yml": REPORT.replace("id: report", "id: other"),
                               "_files/queries/total.sql": "select count(*) from sales\n"})
    deploy_flow(f"id: stale\nnamespace: {ns}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
                "    message: x\n")
    deploy_flow(textwrap.dedent(SYNC.format(ns=ns, url=url)))
    execution = wait_for(create_execution(ns, "sync", {}).id, timeout=120)
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    live = set(models.Flow.objects.filter(namespace__startswith=ns, deleted=False).values_list("namespace", "flow_id"))
    assert live == {(ns, "sync"), (ns, "report"), (f"{ns}.sub", "other")}  # stale deleted, sync kept
    child = models.Execution.objects.get(namespace=ns, flow_id="report")
    child_run = wait_for(child.id, timeout=60)
    assert {r.task_id: r.outputs for r in child_run.task_runs}["query"] == {"value": "select count(*) from sales"}
