"""``io.kestra.plugin.git.PushFlows`` and ``PushNamespaceFiles``: Celestra → Git.

Both clone ``branch`` (created when missing), replace what is under ``gitDirectory`` with Celestra's
resources (files there that Celestra no longer has are removed; with ``flows``/``files`` patterns,
only those matching), stage it, write the diff (one ``{file, additions, deletions, changes}`` row per
file, an ION file) and, unless ``dryRun``, commit and push.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Union

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import glob_match, platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_bool, render_text, render_text_list

from ._common import GitProps, GitRepo, commit_and_push, diff_rows, git_directory, store_rows
from .sync import _flow_service


class PushProps(GitProps):
    branch: Text = "main"
    commitMessage: Optional[Text] = None
    dryRun: bool = False
    authorName: Optional[Text] = None
    authorEmail: Optional[Text] = None


def _replace(repo: GitRepo, root: Path, contents: dict[Path, bytes], keep: Any) -> None:
    """Remove the files under ``root`` not in ``contents`` (and selected by ``keep``), write ``contents``."""
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path not in contents and keep(path):
                repo.git("rm", "--quiet", "--cached", "--ignore-unmatch", str(path.relative_to(repo.directory)))
                path.unlink()
    for path, content in contents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _push(ctx: RunContext, props: dict[str, Any], directory: str, build: Any, default_message: str) -> dict[str, Any]:
    branch = (render_text(ctx, props.get("branch")) or "main").strip()
    repo = GitRepo(ctx, props)
    try:
        repo.clone(branch, depth=None, submodules=render_bool(ctx, props.get("cloneSubmodules"), False),
                   create_branch=True)
        root = repo.directory / directory
        root.mkdir(parents=True, exist_ok=True)
        contents, keep = build(root)
        _replace(repo, root, contents, keep)
        repo.git("add", "--all", "--", directory)
        rows = diff_rows(repo)
        uri = store_rows(ctx, rows)
        message = render_text(ctx, props.get("commitMessage")) or default_message
        pushed = commit_and_push(repo, ctx, props, branch, message)
    finally:
        repo.close()
    return {**pushed, "diff": uri}


def _patterns(ctx: RunContext, value: Any) -> list[str] | None:
    patterns = render_text_list(ctx, value) if value is not None else []
    return patterns or None


@register
class PushFlows(CorePlugin):
    """Push the flows of ``sourceNamespace`` (child namespaces in sub-folders with
    ``includeChildNamespaces``) to ``gitDirectory``; ``targetNamespace`` rewrites their namespace."""

    type = "io.kestra.plugin.git.PushFlows"
    kind = RUNNABLE

    class Props(PushProps):
        gitDirectory: Text = "_flows"
        sourceNamespace: Optional[Text] = None
        targetNamespace: Optional[Text] = None
        flows: Optional[Union[Text, list[Text]]] = None
        includeChildNamespaces: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        service = _flow_service(ctx)
        source_ns = (render_text(ctx, props.get("sourceNamespace")) or "").strip() or (
            (ctx.variables.get("flow") or {}).get("namespace") or ctx.namespace)
        target_ns = (render_text(ctx, props.get("targetNamespace")) or "").strip() or source_ns
        children = render_bool(ctx, props.get("includeChildNamespaces"), False)
        globs = _patterns(ctx, props.get("flows"))
        directory = git_directory(ctx, props, "_flows")

        def build(root: Path) -> tuple[dict[Path, bytes], Any]:
            contents: dict[Path, bytes] = {}
            for flow in service.flow_sources(source_ns, children):
                if globs and not any(glob_match(g, flow["id"]) for g in globs):
                    continue
                folder = root
                if flow["namespace"] != source_ns:
                    folder = root.joinpath(*flow["namespace"][len(source_ns) + 1:].split("."))
                source = re.sub(r"(?m)^revision:\s*\d+\n?", "", flow["source"])
                source = re.sub(r"(?m)^(\s*namespace:\s*)" + re.escape(source_ns) + r"\b", r"\g<1>" + target_ns,
                                source)
                contents[folder / f"{flow['id']}.yml"] = source.encode("utf-8")
            return contents, (lambda path: _selected(path, globs))

        out = _push(ctx, props, directory, build, f"Add flows from {source_ns} namespace")
        return {"commitId": out["commitId"], "commitURL": out["commitURL"], "flows": out["diff"]}


def _selected(path: Path, patterns: list[str] | None) -> bool:
    """Kestra matches the patterns as regular expressions on the file name or the path when removing."""
    if not patterns:
        return True
    for pattern in patterns:
        try:
            if re.fullmatch(pattern, path.name) or re.fullmatch(pattern, str(path)):
                return True
        except re.error:
            pass
        if glob_match(pattern, path.name) or glob_match(pattern, path.stem):
            return True
    return False


@register
class PushNamespaceFiles(CorePlugin):
    """Push the namespace files of ``namespace`` (those matching ``files`` globs, all by default)."""

    type = "io.kestra.plugin.git.PushNamespaceFiles"
    kind = RUNNABLE

    class Props(PushProps):
        namespace: Optional[Text] = None
        files: Optional[Union[Text, list[Text]]] = None
        gitDirectory: Text = "_files"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        namespace = (render_text(ctx, props.get("namespace")) or "").strip() or ctx.namespace
        globs = _patterns(ctx, props.get("files"))
        directory = git_directory(ctx, props, "_files")

        def build(root: Path) -> tuple[dict[Path, bytes], Any]:
            contents: dict[Path, bytes] = {}
            for path in platform.nsfile_list(namespace):
                if globs and not any(glob_match(g if g.startswith("/") else "/" + g, path) for g in globs):
                    continue
                content = platform.nsfile_read(namespace, path)
                if content is None:
                    continue
                target = (root / path.lstrip("/")).resolve()
                if root.resolve() not in target.parents:
                    raise TaskFailure(f"Invalid namespace file path: {path}")
                contents[root / path.lstrip("/")] = content
            return contents, (lambda file: _selected(file, globs))

        out = _push(ctx, props, directory, build, f"Add files from {namespace} namespace")
        return {"commitId": out["commitId"], "commitURL": out["commitURL"], "files": out["diff"]}
