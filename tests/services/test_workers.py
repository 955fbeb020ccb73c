"""Real Celery worker processes on Redis and PostgreSQL: routing by worker group, and workers that die.

These run under `make test-services` (the second half of `make test`); with the in-process broker
there are no separate worker processes to route to or kill.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from flows_app.services import create_execution, deploy_flow, wait_for
from orchestrator.engine import states
from tests.conftest import ROOT, services_mode

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not services_mode(), reason="needs Redis and worker processes: run by `make test-services`"),
]


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def start_worker(group: str, log_name: str, **env: str) -> subprocess.Popen:
    log = open(ROOT / "var" / f"test-{log_name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "server", "worker", "--groups", group, "--no-default-group",
         "--concurrency", "1", "--pool", "prefork"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def wait_for_children(pid: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children_of(pid)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("worker pool did not start")


def flow_source(flow_id: str, body: str) -> str:
    return f"id: {flow_id}\nnamespace: company.services\n" + textwrap.dedent(body)


def test_a_task_with_a_worker_group_runs_only_on_that_group(runtime, transactional_db):
    # given: the session runtime has a default worker and a worker of group "gpu" only
    flow_id = f"groups-{uuid.uuid4().hex[:8]}"
    deployed = deploy_flow(flow_source(flow_id, """
    tasks:
      - id: anywhere
        type: io.kestra.plugin.core.debug.Return
        format: a
      - id: on-gpu
        type: io.kestra.plugin.core.debug.Return
        format: b
        workerGroup:
          key: gpu
      - id: nowhere
        type: io.kestra.plugin.core.debug.Return
        format: c
        workerGroup:
          key: no-such-group
    """))
    # when
    execution = create_execution("company.services", deployed.parsed.id, {})
    time.sleep(3)
    current = wait_for(execution.id, until=[states.RUNNING], timeout=10)
    # then: the gpu task ran on the gpu worker; the task of a group with no worker waits
    workers = {r.task_id: (r.attempts[0].worker_id if r.attempts else None) for r in current.task_runs}
    assert workers["anywhere"].startswith("worker@")
    assert workers["on-gpu"].startswith("worker-gpu@")
    assert workers["nowhere"] is None
    assert [r.state.current for r in current.task_runs if r.task_id == "nowhere"] == [states.CREATED]
    # a worker of that group comes up: the waiting task runs and the execution ends
    late = start_worker("no-such-group", "worker-late")
    try:
        done = wait_for(execution.id, timeout=60)
        assert done.state.current == states.SUCCESS
        late_worker = [r for r in done.task_runs if r.task_id == "nowhere"][0].attempts[0].worker_id
        assert late_worker.startswith("worker-no-such-group@")
    finally:
        late.terminate()
        late.wait(15)


def test_a_killed_pool_process_has_its_task_redelivered(runtime, transactional_db):
    # given: a worker of group "crash" with a single pool process
    worker = start_worker("crash", "worker-crash")
    try:
        children = wait_for_children(worker.pid)
        time.sleep(2)
        deployed = deploy_flow(flow_source(f"crash-{uuid.uuid4().hex[:8]}", """
        tasks:
          - id: slow
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT3S
            workerGroup:
              key: crash
          - id: after
            type: io.kestra.plugin.core.debug.Return
            format: done
        """))
        execution = create_execution("company.services", deployed.parsed.id, {})
        time.sleep(1.5)  # the pool process is sleeping inside the task
        # when: the pool process dies mid-task
        for child in children:
            os.kill(child, signal.SIGKILL)
        # then: the lost attempt's lease expires, the task run is resubmitted as a new attempt (the
        # redelivered message finds the job claimed and does nothing), the execution ends right
        done = wait_for(execution.id, timeout=90)
        assert done.state.current == states.SUCCESS
        slow = [r for r in done.task_runs if r.task_id == "slow"][0]
        assert slow.state.current == states.SUCCESS
        assert [a.state.current for a in slow.attempts] == [states.RESUBMITTED, states.SUCCESS]
    finally:
        worker.terminate()
        worker.wait(15)


def test_a_worker_killed_outright_has_its_task_resubmitted_when_its_lease_expires(runtime, transactional_db):
    # given: a worker of group "doomed" that will be killed with its pool while running a task
    worker = start_worker("doomed", "worker-doomed")
    wait_for_children(worker.pid)
    time.sleep(2)
    deployed = deploy_flow(flow_source(f"doomed-{uuid.uuid4().hex[:8]}", """
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT2S
        workerGroup:
          key: doomed
    """))
    execution = create_execution("company.services", deployed.parsed.id, {})
    time.sleep(1.0)
    for child in children_of(worker.pid):
        os.kill(child, signal.SIGKILL)
    worker.send_signal(signal.SIGKILL)
    worker.wait(15)
    # when: another worker of the group starts (with the default visibility timeout: one hour)
    replacement = start_worker("doomed", "worker-doomed-2")
    try:
        # then: the lease expires, the task run is resubmitted, the execution ends right
        done = wait_for(execution.id, timeout=90)
        assert done.state.current == states.SUCCESS
        slow = done.task_runs[0]
        assert [a.state.current for a in slow.attempts] == [states.RESUBMITTED, states.SUCCESS]
    finally:
        replacement.terminate()
        replacement.wait(15)
