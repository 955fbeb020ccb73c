"""Faults injected into a running Celestra (PostgreSQL and Redis of its own, every role a process).

Every scenario asserts: each accepted execution ends in its expected state within a bounded
recovery window; no task side effect runs twice for one attempt; a refused creation leaves no row;
no concurrency slot is exceeded. Sizes: ``CELESTRA_FAULTS_SIZE`` (default 20 executions per burst,
small enough for CI on two cores). Figures (accepted, ended right, recovery time) are appended to
``$CELESTRA_FAULTS_REPORT`` when set (see docs/reliability.md).
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from .harness import Cluster, wait_until

pytestmark = pytest.mark.faults

SIZE = int(os.environ.get("CELESTRA_FAULTS_SIZE", "20"))
#: after the fault is over, every execution must end within this many seconds
RECOVERY = float(os.environ.get("CELESTRA_FAULTS_RECOVERY", "90"))
FLOWS = Path(__file__).parent / "flows"
BROKER = os.environ.get("CELESTRA_FAULTS_BROKER", "redis")


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(FLOWS, broker=BROKER)
    cluster.env["ENV_EFFECTS"] = cluster.effects.url
    try:
        cluster.start()
        cluster.start_web()
        cluster.start_executor()
        cluster.start_worker()
        cluster.start_scheduler()
        wait_for_roles(cluster)
        yield cluster
    finally:
        cluster.stop()


def wait_for_roles(cluster: Cluster) -> None:
    """A first execution ends: every role is up and consuming."""
    status, execution_id = cluster.create("faults", "two", "warmup")
    assert status == 200, status
    cluster.wait_terminal([execution_id], 120)


def record(scenario: str, **figures) -> None:
    path = os.environ.get("CELESTRA_FAULTS_REPORT")
    line = json.dumps({"scenario": scenario, "broker": BROKER, "size": SIZE, **figures})
    print(line)
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")


class Burst:
    """Create ``count`` executions through the API, as fast as they are answered, in a thread."""

    def __init__(self, cluster: Cluster, flow_id: str, count: int):
        self.cluster, self.flow_id, self.count = cluster, flow_id, count
        self.accepted: list[str] = []
        self.refused_tokens: list[str] = []
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(self.count):
            token = uuid.uuid4().hex[:12]
            status, execution_id = self.cluster.create("faults", self.flow_id, token)
            self.statuses.append(status)
            if status == 200 and execution_id:
                self.accepted.append(execution_id)
            else:
                self.refused_tokens.append(token)
                time.sleep(0.1)

    def start(self) -> Burst:
        self.thread.start()
        return self

    def wait_accepted(self, n: int) -> None:
        wait_until(lambda: len(self.accepted) >= n or not self.thread.is_alive(), 120, f"{n} accepted executions")

    def join(self) -> None:
        self.thread.join(300)
        assert not self.thread.is_alive(), "the burst did not end"


def check(cluster: Cluster, scenario: str, burst: Burst, expected: str = "SUCCESS", recovery: float = RECOVERY,
          **extra) -> dict[str, str]:
    """The assertions every scenario makes, and its figures."""
    states, took = cluster.wait_terminal(burst.accepted, recovery)
    wrong = {i: s for i, s in states.items() if s != expected}
    duplicates = cluster.effects.duplicates()
    # a refused request (HTTP error or no answer) left nothing behind, or its execution runs anyway
    left = cluster.rows_with_tokens(burst.refused_tokens)
    record(scenario, accepted=len(burst.accepted), ended_right=len(states) - len(wrong),
           refused=len(burst.refused_tokens), refused_kept=len(left), recovery_s=round(took, 1),
           statuses=sorted(set(burst.statuses)), duplicated_side_effects=len(duplicates), **extra)
    assert not wrong, f"{len(wrong)} executions ended otherwise than {expected}: {list(wrong.values())[:5]}"
    assert not duplicates, f"side effects ran twice for one attempt: {list(duplicates)[:5]}"
    assert 500 not in burst.statuses or not left, f"HTTP 500 answered for kept executions: {left}"
    return states


def test_executor_sigkill_during_a_burst(cluster):
    # given: a burst under way
    burst = Burst(cluster, "two", SIZE).start()
    for moment in (SIZE // 4, SIZE // 2):  # several moments of the burst
        burst.wait_accepted(moment)
        # when: the executor dies without a word, and comes back
        cluster.kill_role("executor")
        time.sleep(0.5)
        cluster.start_executor()
    burst.join()
    # then
    check(cluster, "executor SIGKILL during a burst", burst)


def test_worker_sigkill_mid_task(cluster):
    # given: executions sleeping inside their first task on the worker
    burst = Burst(cluster, "slow", max(4, SIZE // 4)).start()
    burst.join()
    wait_until(lambda: cluster.states(burst.accepted) and "RUNNING" in cluster.states(burst.accepted).values(), 60,
               "a running execution")
    time.sleep(1)
    # when: the worker and its pool processes are killed mid-task; a new worker starts
    cluster.kill_role("worker")
    cluster.start_worker()
    # then: each lost attempt is resubmitted when its lease expires, and every execution ends right
    check(cluster, "worker SIGKILL mid-task", burst)


def test_redis_restart_during_a_burst(cluster):
    if cluster.broker != "redis":
        pytest.fail("this scenario restarts the cluster's own redis-server: run it with the Redis broker")
    burst = Burst(cluster, "two", SIZE).start()
    burst.wait_accepted(SIZE // 3)
    # when: Redis goes away for a few seconds
    cluster.redis.stop()
    time.sleep(3)
    cluster.redis.start()
    burst.join()
    # then: no role died for good (none is restarted by the test), every execution ends right
    check(cluster, "Redis restart during a burst", burst,
          roles_alive=all(p.poll() is None for p in cluster.roles.values()))
    assert all(p.poll() is None for p in cluster.roles.values()), {n: p.poll() for n, p in cluster.roles.items()}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_during_a_burst(cluster, mode):
    burst = Burst(cluster, "two", SIZE).start()
    burst.wait_accepted(SIZE // 3)
    # when: PostgreSQL stops (cleanly, or as after a crash) and comes back a few seconds later
    cluster.pg.stop(mode)
    time.sleep(3)
    cluster.pg.start()
    burst.join()
    check(cluster, f"PostgreSQL restart ({mode}) during a burst", burst)
    assert all(p.poll() is None for p in cluster.roles.values()), {n: p.poll() for n, p in cluster.roles.items()}


def test_a_duplicated_job_message_runs_nothing_twice(cluster):
    from celery import Celery

    # given: an execution whose task sleeps; its job message captured from the database
    burst = Burst(cluster, "slow", 1).start()
    burst.join()
    execution_id = burst.accepted[0]

    def job_payload():
        with cluster.pg.connect() as conn:
            row = conn.execute("SELECT payload, queue FROM flows_app_job WHERE execution_id = %s AND state = 'RUNNING'",
                               [execution_id]).fetchone()
        return row

    payload, queue = wait_until(job_payload, 60, "the running job")
    # when: the same message is delivered twice more
    sender = Celery(broker=cluster.broker_url)
    for _ in range(2):
        sender.send_task("orchestrator.run_task", args=[payload], queue=queue)
    # then: it ran once
    check(cluster, "duplicated job message", burst)
    nap_hits = [k for k in cluster.effects.hits if k[0] == execution_id]
    assert len(nap_hits) == 1


def test_kill_of_a_long_task_stops_it(cluster):
    # given: an execution in a 60 s sleep
    burst = Burst(cluster, "long", 1).start()
    burst.join()
    execution_id = burst.accepted[0]
    wait_until(lambda: cluster.states([execution_id]).get(execution_id) == "RUNNING", 60, "the long task to run")
    time.sleep(1)
    # when
    begun = time.monotonic()
    status, _ = cluster.api("DELETE", f"/api/v1/main/executions/{execution_id}/kill")
    assert status in (200, 202, 204), status
    cluster.wait_terminal([execution_id], 10)
    killed_after = time.monotonic() - begun
    # then: KILLED; the worker's attempt stopped (its slot serves the next executions long before the
    # 60 s are over) and the task after it never ran
    follow = Burst(cluster, "two", 4).start()
    follow.join()
    check(cluster, "kill of a long task", follow, killed_after_s=round(killed_after, 2))
    assert cluster.states([execution_id])[execution_id] == "KILLED"
    assert execution_id not in cluster.effects.executions_hit()
    wait_until(lambda: "job" in cluster.log_of("worker") and "was killed" in cluster.log_of("worker"), 10,
               "the worker to stop the killed attempt")


def test_timeout_of_a_task_blocking_in_a_socket(cluster):
    # given: tasks blocked reading from a server that never answers, timeout PT2S
    burst = Burst(cluster, "blocking", 3).start()
    burst.join()
    # then: each attempt ends FAILED with Kestra's message, and the worker's slots are free again
    check(cluster, "timeout of a task blocking in a socket", burst, expected="FAILED", recovery=60)
    with cluster.pg.connect() as conn:
        messages = conn.execute("SELECT message FROM flows_app_logentry WHERE execution_id = ANY(%s) "
                                "AND level = 'ERROR' AND task_id = 'wait'", [burst.accepted]).fetchall()
        spans = conn.execute("SELECT state_json FROM flows_app_taskrun WHERE execution_id = ANY(%s)",
                             [burst.accepted]).fetchall()
    assert sorted(m for (m,) in messages) == ["Timeout after PT2S"] * len(burst.accepted)
    follow = Burst(cluster, "two", 2).start()
    follow.join()
    check(cluster, "after the timeouts", follow, recovery=30)
    from datetime import datetime

    durations = []
    for (state,) in spans:  # from the attempt's start on its worker to its end
        running = [h["date"] for h in state["histories"] if h["state"] == "RUNNING"]
        begun_at = datetime.fromisoformat(running[0])
        ended_at = datetime.fromisoformat(state["histories"][-1]["date"])
        durations.append((ended_at - begun_at).total_seconds())
    record("timeout: attempt durations (limit 2 s)", seconds=sorted(round(d, 2) for d in durations))


def test_concurrency_limit_under_two_executors(cluster):
    # given: a second executor
    cluster.start_executor("executor-2")
    try:
        # when: many executions of a flow limited to 2 at a time
        burst = Burst(cluster, "limited", max(6, SIZE // 2)).start()
        peak = 0
        deadline = time.monotonic() + 120
        while (burst.thread.is_alive() or not burst.accepted or any(
                s not in ("SUCCESS", "FAILED") for s in cluster.states(burst.accepted).values())) \
                and time.monotonic() < deadline:
            if burst.accepted:
                running = sum(1 for s in cluster.states(burst.accepted).values() if s == "RUNNING")
                peak = max(peak, running)
            time.sleep(0.05)
        burst.join()
        # then: never more than 2 running, and they started in the order they were created
        check(cluster, "concurrency limit under two executors", burst, peak_running=peak)
        assert peak <= 2, peak
        with cluster.pg.connect() as conn:
            rows = conn.execute("SELECT id, created, state_json FROM flows_app_execution WHERE id = ANY(%s)",
                                [burst.accepted]).fetchall()
        started = {}
        for execution_id, created, state in rows:
            running = [h["date"] for h in state["histories"] if h["state"] == "RUNNING"]
            started[execution_id] = (running[0], created)
        by_start = [i for i, _ in sorted(started.items(), key=lambda kv: kv[1][0])]
        by_created = [i for i, _ in sorted(started.items(), key=lambda kv: kv[1][1])]
        assert by_start == by_created
    finally:
        cluster.kill_role("executor-2", signal.SIGTERM)
