"""``io.kestra.plugin.git``: Clone, SyncFlows, SyncNamespaceFiles, PushFlows, PushNamespaceFiles against a
local bare repository served over a file:// URL (the real git CLI)."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.memory_platform import MemoryPlatform
from orchestrator.plugins.serdes._base import iter_records
from tests.plugins.test_storage_kv_plugins import NS, Ctx

GIT_ENV = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ENV, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def bare_repo(tmp_path: Path, files: dict[str, str]) -> str:
    """A bare repository with one commit of ``files`` on main; returns its file:// URL."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    work = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", bare.as_uri(), str(work))
    git(work, "checkout", "--quiet", "-b", "main")
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "seed")
    git(work, "push", "--quiet", "origin", "main")
    return bare.as_uri()


def remote_file(url: str, tmp_path: Path, path: str, branch: str = "main") -> str | None:
    bare = Path(url[len("file://"):])
    done = subprocess.run(["git", "show", f"{branch}:{path}"], cwd=bare, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def run(body: str, ctx: Ctx, flow_id: str = "flow") -> Any:
    parsed = parse_flow(f"id: {flow_id}\nnamespace: {NS}\ntasks:\n  - id: task\n" + body).tasks[0]
    return parsed.plugin(parsed).run(ctx)


def rows(ctx: Ctx, uri: str) -> list[dict[str, Any]]:
    return list(iter_records(ctx.platform.read_file(uri).decode("utf-8")))


FLOW_A = "id: a\nnamespace: dev\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: A\n"
FLOW_B = "id: b\nnamespace: dev.marketing\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n" \
         "    message: B\n"


def test_clone_into_the_working_directory(tmp_path: Path) -> None:
    url = bare_repo(tmp_path, {"README.md": "hello\n", "src/main.py": "print(1)\n"})
    work = tmp_path / "wd"
    work.mkdir()
    ctx = Ctx(working_dir=str(work))
    out = run(f"    type: io.kestra.plugin.git.Clone\n    url: {url}\n    branch: main\n    directory: repo\n", ctx)
    assert out == {"directory": str((work / "repo").resolve())}
    assert (work / "repo" / "src" / "main.py").read_text() == "print(1)\n"
    assert git(work / "repo", "rev-list", "--count", "HEAD").strip() == "1"
    with pytest.raises(TaskFailure, match="Branch 'nope' does not exist"):
        run(f"    type: io.kestra.plugin.git.Clone\n    url: {url}\n    branch: nope\n    directory: other\n", ctx)
    with pytest.raises(TaskFailure, match="outside the working directory"):
        run(f"    type: io.kestra.plugin.git.Clone\n    url: {url}\n    directory: ../escape\n", ctx)
    with pytest.raises(TaskFailure, match="git ls-remote failed"):
        run(f"    type: io.kestra.plugin.git.Clone\n    url: {(tmp_path / 'missing.git').as_uri()}\n"
            "    branch: main\n    directory: third\n", ctx)


def test_sync_namespace_files_dry_run_and_delete(tmp_path: Path) -> None:
    url = bare_repo(tmp_path, {"_files/queries/q.sql": "select 1\n", "_files/readme.txt": "same\n"})
    platform = MemoryPlatform(NS, "flow", "exec1", "task", "run1")
    platform.nsfile_write(NS, "/readme.txt", b"same\n")
    platform.nsfile_write(NS, "/old.txt", b"old")
    ctx = Ctx(platform)
    body = f"    type: io.kestra.plugin.git.SyncNamespaceFiles\n    url: {url}\n    delete: true\n"
    out = run(body + "    dryRun: true\n", ctx)
    assert sorted((r["syncState"], r["kestraPath"]) for r in rows(ctx, out["files"])) == [
        ("ADDED", "/queries/q.sql"), ("DELETED", "/old.txt"), ("UNCHANGED", "/readme.txt")]
    assert platform.nsfile_list(NS) == ["/old.txt", "/readme.txt"]  # a dry run writes nothing
    out = run(body, ctx)
    assert platform.nsfile_list(NS) == ["/queries/q.sql", "/readme.txt"]
    assert platform.nsfile_read(NS, "/queries/q.sql") == b"select 1\n"
    assert {r["gitPath"] for r in rows(ctx, out["files"]) if "gitPath" in r} == {"_files/queries/q.sql",
                                                                                 "_files/readme.txt"}


def test_push_namespace_files_commits_and_removes(tmp_path: Path) -> None:
    url = bare_repo(tmp_path, {"_files/gone.txt": "bye\n", "README.md": "keep\n"})
    platform = MemoryPlatform(NS, "flow", "exec1", "task", "run1")
    platform.nsfile_write(NS, "/scripts/run.py", b"print('hi')\n")
    ctx = Ctx(platform)
    body = (f"    type: io.kestra.plugin.git.PushNamespaceFiles\n    url: {url}\n    commitMessage: sync files\n"
            "    authorName: Ann\n    authorEmail: ann@example.com\n")
    dry = run(body + "    dryRun: true\n", ctx)
    assert dry["commitId"] is None
    assert sorted(r["file"] for r in rows(ctx, dry["files"])) == ["_files/gone.txt", "_files/scripts/run.py"]
    assert remote_file(url, tmp_path, "_files/scripts/run.py") is None
    out = run(body, ctx)
    assert len(out["commitId"]) == 40 and out["commitURL"] is None  # a file:// remote has no web page
    assert remote_file(url, tmp_path, "_files/scripts/run.py") == "print('hi')\n"
    assert remote_file(url, tmp_path, "_files/gone.txt") is None
    assert remote_file(url, tmp_path, "README.md") == "keep\n"
    bare = Path(url[len("file://"):])
    log = subprocess.run(["git", "log", "-1", "--format=%an <%ae> %s", "main"], cwd=bare, capture_output=True,
                         text=True).stdout.strip()
    assert log == "Ann <ann@example.com> sync files"
    again = run(body, ctx)
    assert again["commitId"] is None and rows(ctx, again["files"]) == []  # nothing changed: no commit


@pytest.fixture
def storage_dir(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "storage")
    return tmp_path / "storage"


@pytest.mark.django_db
def test_sync_flows_deploys_through_the_runtime(tmp_path: Path, storage_dir: Path) -> None:
    from flows_app.models import Flow
    from flows_app.services import deploy_flow
    from orchestrator.runtime.platform import Platform

    url = bare_repo(tmp_path, {"_flows/a.yml": FLOW_A, "_flows/marketing/b.yml": FLOW_B, "_flows/notes.md": "x"})
    deploy_flow("id: stale\nnamespace: prod\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
                "    message: old\n")
    ctx = Ctx(Platform("prod", "sync", "exec1", "task", "run1"))
    ctx.variables["flow"] = {"id": "sync", "namespace": "prod"}
    body = (f"    type: io.kestra.plugin.git.SyncFlows\n    url: {url}\n    targetNamespace: prod\n"
            "    includeChildNamespaces: true\n    delete: true\n")
    dry = run(body + "    dryRun: true\n", ctx)
    assert sorted((r["syncState"], r["namespace"], r["flowId"]) for r in rows(ctx, dry["flows"])) == [
        ("ADDED", "prod", "a"), ("ADDED", "prod.marketing", "b"), ("DELETED", "prod", "stale")]
    assert not Flow.objects.filter(flow_id="a").exists()

    out = run(body, ctx)
    result = {(r["namespace"], r["flowId"]): r for r in rows(ctx, out["flows"])}
    assert result[("prod", "a")] == {"gitPath": "_flows/a.yml", "syncState": "ADDED", "flowId": "a",
                                     "namespace": "prod", "revision": 1}
    assert result[("prod.marketing", "b")]["gitPath"] == "_flows/marketing/b.yml"
    assert result[("prod", "stale")]["syncState"] == "DELETED"
    assert Flow.objects.get(namespace="prod.marketing", flow_id="b").source.startswith("id: b\nnamespace: prod.marketing")
    assert Flow.objects.get(namespace="prod", flow_id="stale").deleted

    again = run(body, ctx)
    assert {r["syncState"] for r in rows(ctx, again["flows"])} == {"UNCHANGED"}


@pytest.mark.django_db
def test_sync_flows_refuses_an_invalid_flow_unless_told(tmp_path: Path, storage_dir: Path) -> None:
    from orchestrator.runtime.platform import Platform

    url = bare_repo(tmp_path, {"_flows/bad.yml": "id: bad\nnamespace: dev\ntasks:\n  - id: t\n    type: nope.Nope\n",
                               "_flows/a.yml": FLOW_A})
    ctx = Ctx(Platform("prod", "sync", "exec1", "task", "run1"))
    body = f"    type: io.kestra.plugin.git.SyncFlows\n    url: {url}\n    targetNamespace: prod\n"
    with pytest.raises(TaskFailure, match="Invalid flow _flows/bad.yml.*nope.Nope"):
        run(body, ctx)
    out = run(body + "    ignoreInvalidFlows: true\n", ctx)
    assert [r["flowId"] for r in rows(ctx, out["flows"])] == ["a"]
    assert any(level == "WARN" and "_flows/bad.yml" in message for level, message in ctx.logs)


@pytest.mark.django_db
def test_push_flows_to_a_new_branch_with_target_namespace(tmp_path: Path, storage_dir: Path) -> None:
    from flows_app.services import deploy_flow
    from orchestrator.runtime.platform import Platform

    url = bare_repo(tmp_path, {"README.md": "repo\n"})
    deploy_flow(FLOW_A)
    deploy_flow(FLOW_B)
    ctx = Ctx(Platform("dev", "push", "exec1", "task", "run1"))
    out = run(f"    type: io.kestra.plugin.git.PushFlows\n    url: {url}\n    sourceNamespace: dev\n"
              "    targetNamespace: prod\n    includeChildNamespaces: true\n    branch: release\n", ctx)
    assert len(out["commitId"]) == 40
    assert remote_file(url, tmp_path, "_flows/a.yml", "release").startswith("id: a\nnamespace: prod\n")
    assert remote_file(url, tmp_path, "_flows/marketing/b.yml", "release").startswith(
        "id: b\nnamespace: prod.marketing\n")
    assert sorted(r["file"] for r in rows(ctx, out["flows"])) == ["_flows/a.yml", "_flows/marketing/b.yml"]
    assert {r["additions"] for r in rows(ctx, out["flows"])} == {"+6"}
    assert remote_file(url, tmp_path, "README.md", "release") == "repo\n"  # the branch started from main


def test_clone_inside_a_working_directory_flow(run_flow, tmp_path: Path) -> None:
    url = bare_repo(tmp_path, {"scripts/hello.sh": "echo \"::{\\\"outputs\\\":{\\\"greeting\\\":\\\"hi\\\"}}::\"\n"})
    execution = run_flow(textwrap.dedent(f"""\
        id: clone_and_run
        namespace: {NS}
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: clone
                type: io.kestra.plugin.git.Clone
                url: {url}
                branch: main
              - id: run
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - sh scripts/hello.sh
        """), timeout=120)
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["run"]["vars"] == {"greeting": "hi"}
    assert outputs["clone"]["directory"].startswith("/")
