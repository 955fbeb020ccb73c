"""Script tasks on real Celery worker processes (PostgreSQL + Redis): routing by worker group.

Run by `make test-services`; with the in-process broker there are no worker processes to route to.
The other runtime tests of script tasks (files round trip, WorkingDirectory, timeout, live logs)
are in tests/plugins/test_scripts.py and run in both modes.
"""
from __future__ import annotations

import uuid

import pytest

from orchestrator.engine import states
from tests.conftest import services_mode

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not services_mode(), reason="needs Redis and worker processes: run by `make test-services`"),
]


def test_a_script_task_with_a_worker_group_runs_only_on_that_groups_worker(run_flow) -> None:
    # given: the session runtime has a default worker and a worker of group "gpu" only
    execution = run_flow(f"""
id: scripts-groups-{uuid.uuid4().hex[:8]}
namespace: company.services
tasks:
  - id: anywhere
    type: io.kestra.plugin.scripts.python.Script
    script: |
      import os
      from kestra import Kestra
      Kestra.outputs({{"pid": os.getpid()}})
  - id: on-gpu
    type: io.kestra.plugin.scripts.shell.Commands
    workerGroup:
      key: gpu
    commands:
      - echo "::{{\\"outputs\\":{{\\"pid\\":$$}}}}::"
""")
    # then: each ran on its group's worker process
    assert execution.state.current == states.SUCCESS
    runs = {r.task_id: r for r in execution.task_runs}
    assert runs["anywhere"].attempts[0].worker_id.startswith("worker@")
    assert runs["on-gpu"].attempts[0].worker_id.startswith("worker-gpu@")
    assert runs["on-gpu"].outputs["exitCode"] == 0
    assert runs["anywhere"].outputs["vars"]["pid"] > 0 and runs["on-gpu"].outputs["vars"]["pid"] > 0
