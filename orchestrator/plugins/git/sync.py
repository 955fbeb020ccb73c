"""``io.kestra.plugin.git.SyncFlows`` and ``SyncNamespaceFiles``: Git → Celestra.

Both clone ``branch`` and compare what is under ``gitDirectory`` with what Celestra has; each
resource gets a row (``syncState`` ADDED, UPDATED, UNCHANGED or DELETED) in an ION file, the task's
output. With ``dryRun`` nothing is written; with ``delete`` what Celestra has but Git does not is
deleted (the flow running the sync is always kept). Flows are deployed through the runtime's deploy
service, so they are validated and versioned as any other deployment.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_bool, render_text

from ._common import GitProps, GitRepo, git_directory, store_rows

_NAMESPACE_LINE = re.compile(r"(?m)^namespace: (.*)$")
_ID_LINE = re.compile(r"(?m)^id:\s*['\"]?([^'\"\s#]+)")


def _flow_service(ctx: RunContext) -> Any:
    platform = platform_of(ctx)
    if not hasattr(platform, "deploy_flow"):
        raise TaskFailure("This task needs the flow repository, which this run context does not provide")
    return platform


def _clone(ctx: RunContext, props: dict[str, Any]) -> GitRepo:
    repo = GitRepo(ctx, props)
    try:
        repo.clone(render_text(ctx, props.get("branch")) or "main", depth=1,
                   submodules=render_bool(ctx, props.get("cloneSubmodules"), False))
    except Exception:
        repo.close()
        raise
    return repo


def _files(root: Path, recursive: bool) -> list[Path]:
    if not root.is_dir():
        return []
    found = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in found if p.is_file() and ".git" not in p.relative_to(root).parts)


@register
class SyncFlows(CorePlugin):
    """Deploy the flows of ``gitDirectory`` into ``targetNamespace`` (sub-folders into child namespaces
    with ``includeChildNamespaces``); the namespace written in each flow is replaced by the target."""

    type = "io.kestra.plugin.git.SyncFlows"
    kind = RUNNABLE

    class Props(GitProps):
        branch: Text = "main"
        targetNamespace: Text
        gitDirectory: Text = "_flows"
        includeChildNamespaces: bool = False
        delete: bool = False
        dryRun: bool = False
        ignoreInvalidFlows: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from orchestrator.engine.flow import FlowValidationError, parse_flow

        props = self.task.props
        service = _flow_service(ctx)
        target = (render_text(ctx, props.get("targetNamespace")) or "").strip()
        if not target:
            raise TaskFailure("Property 'targetNamespace' is required")
        directory = git_directory(ctx, props, "_flows")
        children = render_bool(ctx, props.get("includeChildNamespaces"), False)
        dry_run = render_bool(ctx, props.get("dryRun"), False)
        ignore_invalid = render_bool(ctx, props.get("ignoreInvalidFlows"), False)
        existing = {(f["namespace"], f["id"]): f for f in service.flow_sources(target, children)}
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        repo = _clone(ctx, props)
        try:
            root = repo.directory / directory
            for path in _files(root, children):
                if path.suffix not in (".yml", ".yaml"):
                    continue
                relative = path.relative_to(root)
                namespace = ".".join([target, *relative.parent.parts]) if relative.parent.parts else target
                source = _NAMESPACE_LINE.sub(f"namespace: {namespace}", path.read_text(), count=1).rstrip()
                git_path = f"{directory}/{relative.as_posix()}"
                try:
                    flow_id = parse_flow(source).id
                except FlowValidationError as exc:
                    if not ignore_invalid:
                        raise TaskFailure(f"Invalid flow {git_path}: {exc}") from None
                    ctx.log("WARN", f"Flow {git_path} is not valid, skipped: {exc}")
                    continue
                before = existing.get((namespace, flow_id))
                seen.add((namespace, flow_id))
                if dry_run:
                    state = "ADDED" if before is None else ("UNCHANGED" if before["source"] == source else "UPDATED")
                    revision = (before or {}).get("revision", 0) + (0 if state == "UNCHANGED" else 1)
                else:
                    try:
                        deployed = service.deploy_flow(source)
                    except Exception as exc:  # noqa: BLE001 - the deploy service's validation errors
                        if not ignore_invalid:
                            raise TaskFailure(f"Unable to deploy flow {git_path}: {exc}") from None
                        ctx.log("WARN", f"Flow {git_path} could not be deployed, skipped: {exc}")
                        continue
                    state = "ADDED" if deployed["created"] else ("UPDATED" if deployed["changed"] else "UNCHANGED")
                    revision = deployed["revision"]
                rows.append({"gitPath": git_path, "syncState": state, "flowId": flow_id, "namespace": namespace,
                             "revision": revision})
        finally:
            repo.close()
        if render_bool(ctx, props.get("delete"), False):
            current = ((ctx.variables.get("flow") or {}).get("namespace"), (ctx.variables.get("flow") or {}).get("id"))
            for key, flow in sorted(existing.items()):
                if key in seen or key == current:  # the flow running the sync is never deleted
                    continue
                if not dry_run:
                    service.delete_flow(flow["namespace"], flow["id"])
                rows.append({"syncState": "DELETED", "flowId": flow["id"], "namespace": flow["namespace"],
                             "revision": flow["revision"] + (0 if dry_run else 1)})
        self._log(ctx, rows, dry_run)
        return {"flows": store_rows(ctx, rows)}

    @staticmethod
    def _log(ctx: RunContext, rows: list[dict[str, Any]], dry_run: bool) -> None:
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["syncState"]] = counts.get(row["syncState"], 0) + 1
        summary = ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items())) or "nothing to sync"
        ctx.log("INFO", ("Dry run: " if dry_run else "") + summary)


@register
class SyncNamespaceFiles(CorePlugin):
    """Write the files of ``gitDirectory`` (recursively) as namespace files of ``namespace``."""

    type = "io.kestra.plugin.git.SyncNamespaceFiles"
    kind = RUNNABLE

    class Props(GitProps):
        branch: Text = "main"
        namespace: Optional[Text] = None
        gitDirectory: Text = "_files"
        delete: bool = False
        dryRun: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        namespace = (render_text(ctx, props.get("namespace")) or "").strip() or ctx.namespace
        directory = git_directory(ctx, props, "_files")
        dry_run = render_bool(ctx, props.get("dryRun"), False)
        existing = set(platform.nsfile_list(namespace))
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        repo = _clone(ctx, props)
        try:
            root = repo.directory / directory
            for path in _files(root, True):
                relative = path.relative_to(root).as_posix()
                kestra_path = "/" + relative
                content = path.read_bytes()
                seen.add(kestra_path)
                if kestra_path not in existing:
                    state = "ADDED"
                elif platform.nsfile_read(namespace, kestra_path) == content:
                    state = "UNCHANGED"
                else:
                    state = "UPDATED"
                if not dry_run and state != "UNCHANGED":
                    platform.nsfile_write(namespace, kestra_path, content)
                rows.append({"gitPath": f"{directory}/{relative}", "syncState": state, "kestraPath": kestra_path})
        finally:
            repo.close()
        if render_bool(ctx, props.get("delete"), False):
            for kestra_path in sorted(existing - seen):
                if not dry_run:
                    platform.nsfile_delete(namespace, kestra_path)
                rows.append({"syncState": "DELETED", "kestraPath": kestra_path})
        SyncFlows._log(ctx, rows, dry_run)
        return {"files": store_rows(ctx, rows)}
