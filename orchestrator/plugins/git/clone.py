"""``io.kestra.plugin.git.Clone``: clone a repository into the working directory."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_bool, render_int, render_text

from ._common import GitProps, GitRepo


@register
class Clone(CorePlugin):
    """Clone ``url`` (``branch``, ``depth`` 1 by default) into ``directory`` of the working directory.

    Inside a WorkingDirectory the next tasks see the clone; ``directory`` in the outputs is its path.
    """

    type = "io.kestra.plugin.git.Clone"
    kind = RUNNABLE

    class Props(GitProps):
        branch: Optional[Text] = None
        commit: Optional[Text] = None
        tag: Optional[Text] = None
        depth: int = Field(1, ge=1)
        directory: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        base = getattr(ctx, "working_dir", None) or tempfile.mkdtemp(prefix="celestra-clone-")
        relative = (render_text(ctx, props.get("directory")) or "").strip()
        target = (Path(base) / relative).resolve() if relative else Path(base).resolve()
        if Path(base).resolve() not in (target, *target.parents):
            raise TaskFailure(f"Invalid value for 'directory': `{relative}` is outside the working directory")
        if target.exists() and any(target.iterdir()):
            raise TaskFailure(f"Unable to clone into '{relative or '.'}': the directory is not empty")
        commit = render_text(ctx, props.get("commit"))
        tag = render_text(ctx, props.get("tag"))
        branch = render_text(ctx, props.get("branch")) or tag
        repo = GitRepo(ctx, props, directory=target)
        try:
            # a given commit may be anywhere in the history: clone it whole
            depth = None if commit else render_int(ctx, props.get("depth"), "depth") or 1
            repo.clone(branch, depth=depth, submodules=render_bool(ctx, props.get("cloneSubmodules"), False))
            if commit:
                repo.git("checkout", "--quiet", commit)
            ctx.log("INFO", f"Cloned {repo.mask(repo.url)} into {target}")
        finally:
            repo.close()
        return {"directory": str(target)}
