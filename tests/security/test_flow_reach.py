"""A flow reaches the secrets and KV store of its own namespace and its parents', and starts subflows
of those and of the namespaces below it; nothing else (Kestra's namespace inheritance)."""
from __future__ import annotations

import uuid

import pytest

from flows_app import models
from orchestrator.engine import states


def unique(name: str) -> str:
    # worker processes cache parsed flows by revision: each test uses flow ids of its own
    return f"{name}-{uuid.uuid4().hex[:8]}"


def flow(namespace: str, flow_id: str, message: str) -> str:
    return f"""
id: {unique(flow_id)}
namespace: {namespace}
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: "{message}"
"""


def messages(execution_id: str) -> str:
    return "\n".join(models.LogEntry.objects.filter(execution_id=execution_id).values_list("message", flat=True))


@pytest.fixture
def secrets_and_kv(transactional_db):
    from secrets_app.store import set_secret
    from storage_app.models import KVEntry

    set_secret("company", "PARENT", "parent-value")
    set_secret("company.other", "OTHER", "other-value")
    KVEntry.objects.create(namespace="company", key="pk", value="parent-kv")
    KVEntry.objects.create(namespace="company.other", key="ok", value="other-kv")


def test_a_flow_reads_its_parents_secret_and_kv(run_flow, secrets_and_kv):
    execution = run_flow(flow("company.team", "reads", "{{ secret('PARENT', namespace='company') }} "
                                                       "{{ kv('pk', namespace='company') }}"))

    assert execution.state.current == states.SUCCESS
    assert "parent-kv" in messages(execution.id)  # the secret itself is masked


@pytest.mark.parametrize("expression,what", [
    ("{{ secret('OTHER', namespace='company.other') }}", "secrets"),
    ("{{ kv('ok', namespace='company.other') }}", "KV store"),
])
def test_a_flow_cannot_read_another_namespace(run_flow, secrets_and_kv, expression, what):
    execution = run_flow(flow("company.team", "steals", expression))

    assert execution.state.current == states.FAILED
    logged = messages(execution.id)
    assert f"cannot access the {what} of namespace 'company.other'" in logged
    assert "other-value" not in logged and "other-kv" not in logged


def test_kv_tasks_cannot_write_another_namespace(run_flow, secrets_and_kv):
    from storage_app.models import KVEntry

    execution = run_flow(f"""
id: {unique("writes")}
namespace: company.team
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    namespace: company.other
    key: ok
    value: overwritten
""")

    assert execution.state.current == states.FAILED
    assert KVEntry.objects.get(namespace="company.other", key="ok").value == "other-kv"


@pytest.mark.parametrize("child_namespace,allowed", [
    ("company.team.etl", True), ("company", True), ("company.other", False)])
def test_subflows_reach_parents_and_children_only(run_flow, transactional_db, child_namespace, allowed):
    from flows_app.services import deploy_flow

    child = deploy_flow(flow(child_namespace, "child", "child ran")).parsed.id
    execution = run_flow(f"""
id: {unique("parent")}
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {child_namespace}
    flowId: {child}
""")

    assert execution.state.current == (states.SUCCESS if allowed else states.FAILED)
    children = models.Execution.objects.filter(namespace=child_namespace, flow_id=child)
    assert children.exists() is allowed
    if not allowed:
        assert f"cannot start a flow of namespace '{child_namespace}'" in messages(execution.id)
