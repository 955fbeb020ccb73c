"""``io.kestra.plugin.core.kv.PurgeKV`` on the in-memory platform and through the runtime (database KV)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.namespaces import NamespaceAccessDenied
from orchestrator.engine.memory_platform import MemoryPlatform, utcnow

from .test_storage_kv_plugins import Ctx, run


def seeded() -> Ctx:
    platform = MemoryPlatform("company", "flow", "exec1", "task", "run1")
    for namespace in ("company", "company.team", "company.team.sub", "other"):
        platform.kv_set("AI_live", 1, namespace)
        platform.kv_set("AI_old", 2, namespace)
        platform.kv_set("plain_old", 3, namespace)
        for key in ("AI_old", "plain_old"):  # expired a minute ago
            platform.kv[(namespace, key)].expires = utcnow() - timedelta(minutes=1)
    return Ctx(platform)


def keys(ctx: Ctx) -> set[tuple[str, str]]:
    return set(ctx.platform.kv)


def test_default_purges_expired_keys_of_every_namespace_the_flow_manages() -> None:
    ctx = seeded()  # a flow of namespace "company"
    out = run("    type: io.kestra.plugin.core.kv.PurgeKV\n", ctx)
    assert out == {"size": 6}
    assert keys(ctx) == {(ns, "AI_live") for ns in ("company", "company.team", "company.team.sub")} | {
        ("other", "AI_old"), ("other", "plain_old"), ("other", "AI_live")}  # another tree: left alone


def test_a_listed_namespace_the_flow_may_not_manage_fails_the_task() -> None:
    ctx = seeded()
    with pytest.raises(NamespaceAccessDenied, match="cannot purge the KV store of other"):
        run("    type: io.kestra.plugin.core.kv.PurgeKV\n    namespaces: [other]\n", ctx)
    assert ("other", "AI_old") in keys(ctx)


def test_namespaces_children_and_key_pattern() -> None:
    ctx = seeded()
    out = run("""    type: io.kestra.plugin.core.kv.PurgeKV
    namespaces: [company.team]
    keyPattern: "AI_*"
    behavior:
      type: key
      expiredOnly: false
""", ctx)
    assert out == {"size": 4}
    assert ("company.team", "AI_live") not in keys(ctx) and ("company.team.sub", "AI_old") not in keys(ctx)
    assert ("company.team", "plain_old") in keys(ctx) and ("company", "AI_old") in keys(ctx)
    out = run("""    type: io.kestra.plugin.core.kv.PurgeKV
    namespaces: [company]
    includeChildNamespaces: false
    expiredOnly: true
""", ctx)
    assert out == {"size": 2}
    assert not {("company", "AI_old"), ("company", "plain_old")} & keys(ctx)


def test_namespace_pattern_and_version_behaviour() -> None:
    ctx = seeded()
    out = run("""    type: io.kestra.plugin.core.kv.PurgeKV
    namespacePattern: "company.?eam*"
    behavior:
      type: version
      keepAmount: 1
""", ctx)
    assert out == {"size": 0}  # the only version of a key is kept
    out = run("""    type: io.kestra.plugin.core.kv.PurgeKV
    namespacePattern: "company.?eam*"
    behavior:
      type: version
      keepAmount: 0
""", ctx)
    assert out == {"size": 6}
    assert {ns for ns, _ in keys(ctx)} == {"company", "other"}


def test_namespaces_and_pattern_together_is_an_error() -> None:
    with pytest.raises(TaskFailure, match="can't be used at the same time"):
        run("    type: io.kestra.plugin.core.kv.PurgeKV\n    namespaces: [a]\n    namespacePattern: 'a*'\n", seeded())


PURGE_FLOW = """
id: purge-kv
namespace: company.team
tasks:
  - id: keep
    type: io.kestra.plugin.core.kv.Set
    key: kept
    value: 1
  - id: expiring
    type: io.kestra.plugin.core.kv.Set
    key: short
    value: 2
    ttl: PT0.001S
  - id: other
    type: io.kestra.plugin.core.kv.Set
    namespace: company
    key: gone
    value: 3
    ttl: PT0.001S
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.05S
  - id: purge
    type: io.kestra.plugin.core.kv.PurgeKV
    namespaces: [company]
"""


def test_purge_kv_through_the_runtime(run_flow, settings, tmp_path: Path) -> None:
    from storage_app.models import KVEntry

    settings.MEDIA_ROOT = str(tmp_path)
    execution = run_flow(PURGE_FLOW)
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["purge"] == {"size": 2}
    assert list(KVEntry.objects.values_list("namespace", "key")) == [("company.team", "kept")]
