"""Durable dispatch, one step at a time: pending work as rows, claims, leases, the reconciler, the
concurrency slot, and the worker's supervisor (timeout and kill of a task blocked in a socket).

Each test runs inside one database transaction (``db``): nothing it writes is visible to a running
runtime, and nothing is published after commit, so each reconciler pass and each step is the test's
own. The reconciler publishes directly; those wake-ups name rows no other process can see.
"""
from __future__ import annotations

import socket
import textwrap
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from flows_app import models
from flows_app.services import create_execution, deploy_flow, load_execution
from flows_app.services_admin import kill_execution
from orchestrator.engine import states
from orchestrator.runtime import durable
from orchestrator.runtime.tasks import step
from orchestrator.runtime.worker import run_job

NOWHERE = "durable-nowhere"  # a worker group no worker consumes


def deploy(body: str) -> str:
    flow_id = f"durable-{uuid.uuid4().hex[:8]}"
    deploy_flow(f"id: {flow_id}\nnamespace: company.durable\n" + textwrap.dedent(body))
    return flow_id


ONE_TASK = f"""
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hi
    workerGroup:
      key: {NOWHERE}
"""


def started_job(body: str = ONE_TASK) -> tuple[str, models.Job]:
    """An execution stepped once: its first task run dispatched as a PENDING job row."""
    execution = create_execution("company.durable", deploy(body), {})
    step(execution.id, [], drain=True)
    return execution.id, models.Job.objects.get(execution_id=execution.id)


def result_of(job: models.Job, state: str = states.SUCCESS) -> dict:
    moment = timezone.now().isoformat()
    return {"taskrun_id": job.taskrun_id, "attempt": job.attempt, "state": state, "outputs": {"value": "hi"},
            "started": moment, "ended": moment, "worker_id": "w", "logs": [], "metrics": []}


def age(queryset, **fields) -> None:
    """Move timestamps into the past: the reconciler then finds the rows overdue."""
    past = timezone.now() - timedelta(hours=1)
    queryset.update(**{name: past for name in fields})


# --- every pending piece of work is a row ----------------------------------------------------------

def test_a_new_execution_records_its_start_and_the_first_step_clears_it(db):
    # given
    execution = create_execution("company.durable", deploy(ONE_TASK), {})
    # then: the row carries the timer that starts it if the message is lost
    assert models.Execution.objects.get(pk=execution.id).wake_at is not None
    # when
    step(execution.id, [], drain=True)
    # then
    row = models.Execution.objects.get(pk=execution.id)
    assert row.state == states.RUNNING and row.wake_at is None


def test_a_dispatched_task_run_is_a_pending_job_row_written_by_the_step(db):
    execution_id, job = started_job()
    run = models.TaskRun.objects.get(execution_id=execution_id)
    assert (job.taskrun_id, job.attempt, job.state) == (run.id, 1, models.Job.PENDING)
    assert job.queue == f"worker.{NOWHERE}"
    assert job.payload["task_id"] == "hello" and job.payload["attempt"] == 1


def test_applying_a_result_removes_its_job(db):
    execution_id, job = started_job()
    step(execution_id, [result_of(job)])
    assert not models.Job.objects.filter(execution_id=execution_id).exists()
    assert models.Execution.objects.get(pk=execution_id).state == states.SUCCESS


def test_a_child_execution_ending_parks_its_result_for_the_parent(db):
    # given: a parent waiting on a subflow whose task goes nowhere
    child_id = deploy(ONE_TASK)
    parent_id = deploy(f"""
    tasks:
      - id: sub
        type: io.kestra.plugin.core.flow.Subflow
        namespace: company.durable
        flowId: {child_id}
    """)
    parent = create_execution("company.durable", parent_id, {})
    step(parent.id, [], drain=True)
    child = models.Execution.objects.get(parent_id=parent.id)
    step(child.id, [], drain=True)
    job = models.Job.objects.get(execution_id=child.id)
    # when: the child ends
    step(child.id, [result_of(job)])
    # then: the parent's notification is a row, and the parent's next step applies it
    assert models.PendingResult.objects.filter(execution_id=parent.id).count() == 1
    step(parent.id, [], drain=True)
    assert models.Execution.objects.get(pk=parent.id).state == states.SUCCESS
    assert not models.PendingResult.objects.filter(execution_id=parent.id).exists()


# --- claims --------------------------------------------------------------------------------------

def test_a_job_is_claimed_once_and_a_second_delivery_does_nothing(db):
    _, job = started_job()
    first = durable.claim(job.payload, "worker-a")
    second = durable.claim(job.payload, "worker-b")
    assert first is not None and second is None
    row = models.Job.objects.get(pk=job.pk)
    assert (row.state, row.worker_id) == (models.Job.RUNNING, "worker-a")


def test_a_claimed_task_run_shows_running_with_its_worker_and_start_date(db):
    execution_id, job = started_job()
    durable.claim(job.payload, "worker-a/123/abc")
    run = load_execution(execution_id).task_runs[0]
    assert run.state.current == states.RUNNING
    assert run.attempts[-1].worker_id == "worker-a/123/abc"
    assert run.attempts[-1].state.current == states.RUNNING and run.state.start_date is not None


def test_worker_ids_differ_per_process_and_stay_put_within_one():
    assert durable.worker_id("w@h") == durable.worker_id("w@h")
    assert f"/{__import__('os').getpid()}/" in durable.worker_id("w@h")


# --- the reconciler ------------------------------------------------------------------------------

def test_reconciler_republishes_a_job_whose_message_is_overdue(db):
    _, job = started_job()
    age(models.Job.objects.filter(pk=job.pk), published=True)
    counts = durable.reconcile()
    assert counts["republished"] == 1
    assert models.Job.objects.get(pk=job.pk).published > timezone.now() - timedelta(minutes=1)
    assert durable.reconcile()["republished"] == 0  # not again before it is overdue again


def test_reconciler_leaves_a_fresh_job_alone(db):
    started_job()
    assert durable.reconcile()["republished"] == 0


def test_reconciler_resubmits_a_task_run_whose_lease_expired(db):
    # given: a job claimed by a worker that stopped heartbeating
    execution_id, job = started_job()
    durable.claim(job.payload, "dead-worker")
    age(models.Job.objects.filter(pk=job.pk), heartbeat=True)
    # when: one reconciler pass, then the execution's step
    assert durable.reconcile(check_leases=True)["resubmitted"] == 1
    assert durable.reconcile(check_leases=True)["resubmitted"] == 0
    step(execution_id, [], drain=True)
    # then: the lost attempt is RESUBMITTED and attempt 2 is a new pending job
    run = load_execution(execution_id).task_runs[0]
    assert [a.state.current for a in run.attempts] == [states.RESUBMITTED]
    assert run.attempts[0].worker_id == "dead-worker"
    (again,) = models.Job.objects.filter(execution_id=execution_id)
    assert (again.attempt, again.state, again.deaths) == (2, models.Job.PENDING, 1)
    # and a late result of the lost attempt changes nothing
    step(execution_id, [result_of(job)])
    assert load_execution(execution_id).task_runs[0].state.current != states.SUCCESS


def test_a_job_that_loses_its_worker_max_times_ends_failed(db, settings):
    settings.DURABILITY = {**settings.DURABILITY, "MAX_WORKER_DEATHS": 2}
    execution_id, job = started_job()
    for _ in range(2):
        job = models.Job.objects.get(execution_id=execution_id)
        durable.claim(job.payload, "crashing-worker")
        age(models.Job.objects.filter(pk=job.pk), heartbeat=True)
        durable.reconcile(check_leases=True)
        step(execution_id, [], drain=True)
    execution = load_execution(execution_id)
    assert execution.state.current == states.FAILED
    assert [a.state.current for a in execution.task_runs[0].attempts] == [states.RESUBMITTED, states.FAILED]
    assert models.LogEntry.objects.filter(execution_id=execution_id, message__contains="lost 2 times").exists()
    assert not models.Job.objects.filter(execution_id=execution_id).exists()


def test_leases_are_not_judged_before_the_reconciler_saw_the_database_healthy_that_long(db):
    _, job = started_job()
    durable.claim(job.payload, "slow-worker")
    age(models.Job.objects.filter(pk=job.pk), heartbeat=True)
    durable._healthy_since = None  # as after a database outage
    assert durable.reconcile()["resubmitted"] == 0
    assert models.Job.objects.get(pk=job.pk).state == models.Job.RUNNING


def test_a_finished_job_whose_result_is_parked_is_not_resubmitted(db):
    _, job = started_job()
    durable.claim(job.payload, "w")
    durable.park_result(job.payload, result_of(job))
    age(models.Job.objects.filter(pk=job.pk), heartbeat=True)
    assert durable.reconcile(check_leases=True)["resubmitted"] == 0


def test_reconciler_wakes_executions_with_results_left_behind(db):
    execution_id, job = started_job()
    durable.claim(job.payload, "w")
    durable.park_result(job.payload, result_of(job))
    assert durable.reconcile()["parked"] == 0
    age(models.PendingResult.objects.filter(execution_id=execution_id), created=True)
    assert durable.reconcile()["parked"] == 1
    step(execution_id, [], drain=True)  # what the wake-up does
    assert models.Execution.objects.get(pk=execution_id).state == states.SUCCESS
    assert not models.Job.objects.filter(execution_id=execution_id).exists()


CONCURRENT = f"""
concurrency:
  limit: 1
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hi
    workerGroup:
      key: {NOWHERE}
"""


def test_reconciler_releases_the_oldest_queued_execution_whose_slot_is_free(db):
    # given: a flow with limit 1, one execution running, two queued
    flow_id = deploy(CONCURRENT)
    ids = []
    for _ in range(3):
        execution = create_execution("company.durable", flow_id, {})
        step(execution.id, [], drain=True)
        ids.append(execution.id)
    assert [models.Execution.objects.get(pk=i).state for i in ids] == [states.RUNNING, states.QUEUED, states.QUEUED]
    # when: the first one ends, and its release message is lost; a reconciler pass
    step(ids[0], [result_of(models.Job.objects.get(execution_id=ids[0]))])
    assert durable.reconcile()["released"] == 1
    # then: the oldest queued one takes the slot (what the wake-up's step does), the other waits
    step(ids[2], [], drain=True)
    step(ids[1], [], drain=True)
    assert [models.Execution.objects.get(pk=i).state for i in ids] == [states.SUCCESS, states.RUNNING, states.QUEUED]


def test_a_new_execution_does_not_jump_the_queue(db):
    flow_id = deploy(CONCURRENT.replace("limit: 1", "limit: 2"))
    ids = []
    for _ in range(3):
        execution = create_execution("company.durable", flow_id, {})
        step(execution.id, [], drain=True)
        ids.append(execution.id)
    # the first ends: its slot goes to the queued third, not to a newer fourth stepped first
    step(ids[0], [result_of(models.Job.objects.get(execution_id=ids[0]))])
    newer = create_execution("company.durable", flow_id, {})
    step(newer.id, [], drain=True)
    assert models.Execution.objects.get(pk=newer.id).state == states.QUEUED
    step(ids[2], [], drain=True)
    assert models.Execution.objects.get(pk=ids[2]).state == states.RUNNING


# --- kill ----------------------------------------------------------------------------------------

def test_a_killed_execution_flags_its_jobs_and_a_pending_one_is_never_claimed(db):
    execution_id, job = started_job()
    kill_execution(execution_id)
    assert models.Job.objects.get(pk=job.pk).state == models.Job.KILLED
    assert durable.claim(job.payload, "late-worker") is None


def test_the_heartbeat_renews_the_lease_and_stops_a_killed_job(db):
    # given: a running job registered with this process' heartbeat (the beat is called by hand)
    execution_id, job = started_job()
    durable.claim(job.payload, "me")
    key = (job.taskrun_id, job.attempt)
    heartbeat = durable.Heartbeat()
    heartbeat.active[key] = (threading.Event(), None)
    age(models.Job.objects.filter(pk=job.pk), heartbeat=True)
    heartbeat.beat([key])
    assert models.Job.objects.get(pk=job.pk).heartbeat > timezone.now() - timedelta(minutes=1)
    assert not heartbeat.active[key][0].is_set()
    # when
    kill_execution(execution_id)
    heartbeat.beat([key])
    # then
    assert heartbeat.active[key][0].is_set()


# --- the supervisor: timeout and kill of a task blocked in a socket ------------------------------

@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def loop():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    server.close()


def blocking_job(url: str, timeout: str | None) -> dict:
    flow_id = deploy(f"""
    tasks:
      - id: wait
        type: io.kestra.plugin.core.http.Request
        uri: {url}
        {"timeout: " + timeout if timeout else ""}
        workerGroup:
          key: {NOWHERE}
    """)
    execution = create_execution("company.durable", flow_id, {})
    step(execution.id, [], drain=True)
    return models.Job.objects.get(execution_id=execution.id).payload


def test_timeout_stops_a_task_blocked_in_a_socket(db, silent_server):
    job = blocking_job(silent_server, "PT1S")
    begun = time.monotonic()
    result = run_job(job, worker_id="me")
    took = time.monotonic() - begun
    assert result["state"] == states.FAILED
    assert [l["message"] for l in result["logs"] if l["level"] == "ERROR"] == ["Timeout after PT1S"]
    assert took < 30  # bounded (the request's own read timeout is far longer); the bench measures speed


def test_kill_stops_a_task_blocked_in_a_socket(db, silent_server):
    from orchestrator.runtime.tasks import interrupter

    job = blocking_job(silent_server, None)
    key = (job["taskrun_id"], job["attempt"])
    # registered as run_task does, without the heartbeat thread (it could not see the test's rows)
    with durable.HEARTBEAT.lock:
        durable.HEARTBEAT.active[key] = (threading.Event(), interrupter())
    try:
        killer = threading.Timer(0.5, durable.HEARTBEAT.kill, args=[key])
        killer.start()
        result = run_job(job, worker_id="me")
    finally:
        durable.HEARTBEAT.remove(key)
    assert result["state"] == states.FAILED
    assert any(l["message"] == "Task attempt killed: Killed" for l in result["logs"])


def test_cancelled_is_true_once_killed_or_past_the_timeout(db):
    from orchestrator.runtime.worker import WorkerRunContext

    _, job = started_job()
    ctx = WorkerRunContext(job.payload, None)
    assert not ctx.cancelled()
    ctx.deadline = time.monotonic() - 1
    assert ctx.cancelled()
    ctx.deadline = None
    ctx.killed.set()
    assert ctx.cancelled()


def test_the_api_shows_a_claimed_task_run_running_with_its_worker_and_start_date(db, client):
    execution_id, job = started_job()
    durable.claim(job.payload, "worker@host/42/abc")
    data = client.get(f"/api/v1/main/executions/{execution_id}").json()
    (run,) = data["taskRunList"]
    assert run["state"]["current"] == states.RUNNING and run["state"]["startDate"]
    assert run["attempts"][-1]["workerId"] == "worker@host/42/abc"
    assert run["attempts"][-1]["state"]["current"] == states.RUNNING
