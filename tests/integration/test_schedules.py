"""Schedule triggers, trigger state, Toggle, backfill, scheduleDate and the triggers API (spec §7.1-7.3, §11.5).

The scheduler tick (``evaluate_schedules``) is called with explicit dates, chosen after the real clock
so that a sweep running in the background (which ticks with the real clock) never fires them itself.
"""
from __future__ import annotations

import textwrap
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.urls import include, path
from rest_framework.test import APIClient

from flows_app import models
from flows_app.api import triggers_api
from flows_app.services import delete_flow, deploy_flow, load_execution, wait_for
from orchestrator.engine import states
from orchestrator.runtime import schedules
from orchestrator.runtime.flow_triggers import clear_registry
from orchestrator.runtime.flows import clear_cache

urlpatterns = [path("api/v1/main/", include(triggers_api.routes))]

NEXT_YEAR = datetime.now(timezone.utc).year + 1
JAN_1 = datetime(NEXT_YEAR, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def ns(runtime, transactional_db) -> str:
    clear_cache()
    clear_registry()
    return f"company.sch{uuid.uuid4().hex[:8]}"


def deploy(namespace: str, flow_id: str, body: str):
    return deploy_flow(f"id: {flow_id}\nnamespace: {namespace}\n" + textwrap.dedent(body))


def state(namespace: str, flow_id: str, trigger_id: str = "schedule") -> models.TriggerState:
    return models.TriggerState.objects.get(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id,
                                           condition_id="")


def executions(namespace: str, flow_id: str) -> list[models.Execution]:
    return list(models.Execution.objects.filter(namespace=namespace, flow_id=flow_id).order_by("created", "id"))


def tick(moment: datetime) -> list[str]:
    created = schedules.evaluate_schedules(moment)
    for execution_id in created:
        wait_for(execution_id, timeout=30)
    return created


def wait_unlocked(namespace: str, flow_id: str, trigger_id: str = "schedule", timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while state(namespace, flow_id, trigger_id).execution_id and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(namespace, flow_id, trigger_id).execution_id is None


YEARLY = """
inputs:
  - id: day
    type: STRING
labels:
  team: data
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }} {{ inputs.day }}"
triggers:
  - id: schedule
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 0 1 1 *"
    inputs:
      day: "{{ trigger.date | date('yyyy-MM-dd') }}"
    labels:
      origin: schedule
"""


def test_a_new_schedule_starts_at_its_next_date_and_fires_with_trigger_variables(ns):
    deploy(ns, "yearly", YEARLY)
    row = state(ns, "yearly")
    assert row.type == schedules.SCHEDULE and row.next_execution_date == JAN_1
    assert tick(JAN_1 - timedelta(seconds=1)) == []  # never before its date
    (execution_id,) = tick(JAN_1 + timedelta(seconds=1))
    execution = load_execution(execution_id)
    assert execution.state.current == states.SUCCESS
    assert execution.trigger == {"id": "schedule", "type": schedules.SCHEDULE, "variables": {
        "date": f"{NEXT_YEAR}-01-01T00:00:00Z", "next": f"{NEXT_YEAR + 1}-01-01T00:00:00Z",
        "previous": f"{NEXT_YEAR - 1}-01-01T00:00:00Z"}}
    assert execution.inputs == {"day": f"{NEXT_YEAR}-01-01"}
    labels = execution.labels_map()
    assert labels["origin"] == "schedule" and labels["team"] == "data"
    row = state(ns, "yearly")
    assert row.date == JAN_1 and row.next_execution_date == datetime(NEXT_YEAR + 1, 1, 1, tzinfo=timezone.utc)
    wait_unlocked(ns, "yearly")
    assert state(ns, "yearly").execution_current_state == states.SUCCESS


def test_the_lock_holds_until_the_execution_ends(ns):
    deploy(ns, "slow", """
    tasks:
      - id: sleep
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1S
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 0 1 1 *"
    """)
    (first,) = schedules.evaluate_schedules(JAN_1)
    assert state(ns, "slow").execution_id == first
    assert schedules.evaluate_schedules(JAN_1 + timedelta(days=366)) == []  # locked: not evaluated
    wait_for(first, timeout=30)
    wait_unlocked(ns, "slow")
    assert len(tick(JAN_1 + timedelta(days=366))) == 1


@pytest.mark.parametrize("policy, expected", [
    ("ALL", [0]), ("LAST", [2]), ("NONE", []),
])
def test_recover_missed_schedules(ns, policy, expected):
    deploy(ns, "missed", f"""
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ trigger.date }}}}"
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 0 1 1 *"
        recoverMissedSchedules: {policy}
    """)
    moment = datetime(NEXT_YEAR + 2, 6, 1, tzinfo=timezone.utc)  # three dates are due
    created = tick(moment)
    dates = [load_execution(i).trigger["variables"]["date"] for i in created]
    assert dates == [f"{NEXT_YEAR + n}-01-01T00:00:00Z" for n in expected]
    assert state(ns, "missed").next_execution_date == (
        datetime(NEXT_YEAR + 1, 1, 1, tzinfo=timezone.utc) if policy == "ALL"
        else datetime(NEXT_YEAR + 3, 1, 1, tzinfo=timezone.utc))


def test_conditions_skip_dates_and_late_maximum_delay(ns):
    deploy(ns, "weekdays", """
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 9 * * *"
        timezone: Europe/Paris
        recoverMissedSchedules: ALL
        conditions:
          - type: io.kestra.plugin.core.condition.Not
            conditions:
              - type: io.kestra.plugin.core.condition.Weekend
    """)
    saturday = datetime(NEXT_YEAR + 1, 1, 1, tzinfo=timezone.utc)
    while saturday.weekday() != 5:
        saturday += timedelta(days=1)
    row = state(ns, "weekdays")
    row.next_execution_date = saturday.replace(hour=8)  # 09:00 Paris in winter
    row.save()
    (execution_id,) = tick(saturday + timedelta(days=2, hours=9))  # Monday 10:00 Paris
    assert load_execution(execution_id).trigger["variables"]["date"] == (
        (saturday + timedelta(days=2)).strftime("%Y-%m-%d") + "T09:00:00+01:00")
    deploy(ns, "late", """
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 0 1 1 *"
        lateMaximumDelay: PT1H
    """)
    assert tick(JAN_1 + timedelta(hours=2)) == []
    assert state(ns, "late").next_execution_date == datetime(NEXT_YEAR + 1, 1, 1, tzinfo=timezone.utc)
    assert models.LogEntry.objects.filter(namespace=ns, flow_id="late", trigger_id="schedule").exists()


def test_schedule_on_dates(ns):
    first, second = JAN_1 + timedelta(days=3), JAN_1 + timedelta(days=10)
    deploy(ns, "dates", f"""
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.ScheduleOnDates
        dates:
          - "{second.isoformat()}"
          - "{first.isoformat()}"
    """)
    assert state(ns, "dates").next_execution_date == first
    (one,) = tick(first + timedelta(seconds=1))
    assert load_execution(one).trigger["variables"]["next"] == second.isoformat().replace("+00:00", "Z")
    wait_unlocked(ns, "dates")
    (two,) = tick(second + timedelta(seconds=1))
    assert load_execution(two).trigger["variables"]["previous"] == first.isoformat().replace("+00:00", "Z")
    assert state(ns, "dates").next_execution_date is None
    assert tick(second + timedelta(days=30)) == []


def test_toggle_task_disables_and_enables_a_trigger(ns):
    deploy(ns, "target", YEARLY)
    toggle = deploy(ns, "toggle", f"""
    inputs:
      - id: enabled
        type: BOOLEAN
    tasks:
      - id: toggle
        type: io.kestra.core.tasks.trigger.Toggle
        namespace: {ns}
        flowId: target
        trigger: schedule
        enabled: "{{{{ inputs.enabled }}}}"
    """)
    from flows_app.services import create_execution

    done = wait_for(create_execution(ns, toggle.parsed.id, {"enabled": "false"}).id)
    assert done.state.current == states.SUCCESS
    assert state(ns, "target").disabled
    assert schedules.evaluate_schedules(JAN_1 + timedelta(seconds=1)) == []
    done = wait_for(create_execution(ns, toggle.parsed.id, {"enabled": "true"}).id)
    assert not state(ns, "target").disabled
    deploy(ns, "bad-toggle", """
    tasks:
      - id: toggle
        type: io.kestra.plugin.core.trigger.Toggle
        trigger: nope
    """)
    failed = wait_for(create_execution(ns, "bad-toggle", {}).id)
    assert failed.state.current == states.FAILED
    assert models.LogEntry.objects.filter(execution_id=failed.id, message__contains="Unable to find trigger nope").exists()


def test_stop_after_disables_the_schedule(ns):
    deploy(ns, "stopping", """
    tasks:
      - id: fail
        type: io.kestra.plugin.core.execution.Fail
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 0 1 1 *"
        stopAfter: [FAILED]
    """)
    (execution_id,) = tick(JAN_1)
    assert load_execution(execution_id).state.current == states.FAILED
    deadline = time.monotonic() + 5
    while not state(ns, "stopping").disabled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(ns, "stopping").disabled


def test_flow_update_resets_changed_triggers_and_keeps_the_disabled_flag(ns):
    deploy(ns, "updated", YEARLY)
    schedules.set_trigger_disabled(ns, "updated", "schedule", True)
    row = state(ns, "updated")
    row.next_execution_date = JAN_1 - timedelta(days=400)
    row.save()
    deploy(ns, "updated", YEARLY.replace("0 0 1 1 *", "0 0 2 1 *"))
    row = state(ns, "updated")
    assert row.disabled and row.next_execution_date == JAN_1 + timedelta(days=1)
    deploy(ns, "updated", YEARLY.split("triggers:")[0])
    assert not models.TriggerState.objects.filter(namespace=ns, flow_id="updated").exists()
    deploy(ns, "deleted", YEARLY)
    delete_flow(ns, "deleted")
    assert not models.TriggerState.objects.filter(namespace=ns, flow_id="deleted").exists()


def test_scheduled_start_waits_for_its_date(ns):
    deploy(ns, "later", "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    at = datetime.now(timezone.utc) + timedelta(seconds=1.5)
    execution = schedules.create_scheduled_execution(ns, "later", {}, at)
    assert execution.schedule_date == at and execution.to_json()["scheduleDate"] is not None
    row = models.Execution.objects.get(pk=execution.id)
    assert row.state == states.CREATED and row.wake_at == at
    done = wait_for(execution.id, timeout=20)
    assert done.state.current == states.SUCCESS
    assert done.state.histories[1][1] >= at  # RUNNING not before the date


# --- API --------------------------------------------------------------------------------------------

@pytest.fixture
def client(settings) -> APIClient:
    settings.ROOT_URLCONF = __name__
    return APIClient()


BASE = "/api/v1/main/triggers"


def test_api_search_list_and_disable(ns, client):
    deploy(ns, "yearly", YEARLY)
    found = client.get(f"{BASE}/search", {"namespace": ns}).json()
    assert found["total"] == 1
    (entry,) = found["results"]
    assert entry["abstractTrigger"]["id"] == "schedule" and entry["abstractTrigger"]["cron"] == "0 0 1 1 *"
    context = entry["triggerContext"]
    assert (context["namespace"], context["flowId"], context["triggerId"]) == (ns, "yearly", "schedule")
    assert context["nextExecutionDate"] == f"{NEXT_YEAR}-01-01T00:00:00Z" and context["disabled"] is False
    listed = client.get(f"{BASE}/{ns}/yearly").json()
    assert [t["triggerId"] for t in listed["results"]] == ["schedule"]
    body = {"namespace": ns, "flowId": "yearly", "triggerId": "schedule", "disabled": True}
    assert client.put(BASE, body, format="json").json()["disabled"] is True
    assert state(ns, "yearly").disabled
    answer = client.post(f"{BASE}/set-disabled/by-triggers?disabled=false",
                         [{"namespace": ns, "flowId": "yearly", "triggerId": "schedule"}], format="json")
    assert answer.json() == {"count": 1} and not state(ns, "yearly").disabled
    missing = client.put(BASE, {**body, "triggerId": "nope"}, format="json")
    assert missing.status_code == 404


def test_api_unlock_and_delete(ns, client):
    deploy(ns, "yearly", YEARLY)
    assert client.post(f"{BASE}/{ns}/yearly/schedule/unlock").status_code == 409
    row = state(ns, "yearly")
    row.execution_id = "stuck"
    row.save()
    answer = client.post(f"{BASE}/{ns}/yearly/schedule/unlock")
    assert answer.status_code == 200 and answer.json()["executionId"] is None
    assert client.delete(f"{BASE}/{ns}/yearly/schedule").status_code == 204
    assert not models.TriggerState.objects.filter(namespace=ns, flow_id="yearly").exists()
    assert schedules.get_state(ns, "yearly", "schedule").next_execution_date == JAN_1  # recreated when read


def test_api_backfill_runs_every_date_in_order_then_resumes(ns, client):
    deploy(ns, "daily", """
    inputs:
      - id: who
        type: STRING
        defaults: schedule
    tasks:
      - id: echo
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.who }}"
    triggers:
      - id: schedule
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 0 * * *"
    """)
    live_next = state(ns, "daily").next_execution_date
    body = {"namespace": ns, "flowId": "daily", "triggerId": "schedule",
            "backfill": {"start": "2024-03-01T00:00:00Z", "end": "2024-03-03T12:00:00Z",
                         "inputs": {"who": "backfill"}, "labels": [{"key": "run", "value": "bf"}]}}
    stored = client.put(BASE, body, format="json").json()["backfill"]
    assert stored["currentDate"] == "2024-03-01T00:00:00Z" and stored["paused"] is False
    assert client.put(f"{BASE}/backfill/pause", body, format="json").json()["backfill"]["paused"] is True
    assert schedules.evaluate_schedules(datetime.now(timezone.utc)) == []
    assert client.put(f"{BASE}/backfill/unpause", body, format="json").json()["backfill"]["paused"] is False
    deadline = time.monotonic() + 60
    while state(ns, "daily").backfill and time.monotonic() < deadline:
        for execution_id in schedules.evaluate_schedules(datetime.now(timezone.utc)):
            wait_for(execution_id, timeout=30)
        time.sleep(0.1)
    assert state(ns, "daily").backfill is None
    assert state(ns, "daily").next_execution_date == live_next
    rows = executions(ns, "daily")
    assert [load_execution(r.id).trigger["variables"]["date"] for r in rows] == [
        "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"]
    for row in rows:
        done = wait_for(row.id)
        assert done.inputs == {"who": "backfill"} and done.labels_map()["run"] == "bf"


def test_missing_states_of_deployed_flows_are_created(ns):
    deploy(ns, "yearly", YEARLY)
    models.TriggerState.objects.filter(namespace=ns).delete()  # e.g. a flow deployed before states existed
    assert schedules.ensure_trigger_states(force=True) >= 1
    assert state(ns, "yearly").next_execution_date == JAN_1
    assert schedules.ensure_trigger_states(force=True) == 0  # known revisions are not parsed again
