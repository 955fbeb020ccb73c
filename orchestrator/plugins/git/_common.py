"""The git CLI behind the ``io.kestra.plugin.git`` tasks: clone a branch with the task's credentials.

Credentials: ``username``/``password`` (a token) for http(s) URLs go through a one-shot credential
helper (never in the URL, so never in an error message); ``privateKey`` (and ``passphrase``-less keys)
for ssh URLs through ``GIT_SSH_COMMAND``. ``file://`` URLs and local paths need neither.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RunContext
from orchestrator.plugins.core._common import Props, Text
from orchestrator.plugins.core._render import render_bool, render_text

DEFAULT_AUTHOR = ("Celestra", "celestra@localhost")


class GitProps(Props):
    """Kestra's AbstractGitTask."""

    url: Text
    username: Optional[Text] = None
    password: Optional[Text] = None
    privateKey: Optional[Text] = None
    passphrase: Optional[Text] = None
    cloneSubmodules: Optional[bool] = None
    trustedHosts: Optional[Any] = None
    gitConfig: Optional[dict[str, Any]] = None
    connectTimeout: Optional[int] = None


class GitRepo:
    """A local clone and the git commands run in it; ``close()`` removes what the clone created."""

    def __init__(self, ctx: RunContext, props: dict[str, Any], directory: Path | None = None):
        self.ctx = ctx
        self.url = (render_text(ctx, props.get("url")) or "").strip()
        if not self.url:
            raise TaskFailure("Property 'url' is required")
        self.username = render_text(ctx, props.get("username"))
        self.password = render_text(ctx, props.get("password"))
        self.private_key = render_text(ctx, props.get("privateKey"))
        self.secrets = [s for s in (self.password, self.private_key) if s]
        self._temp = Path(tempfile.mkdtemp(prefix="celestra-git-"))
        self.directory = directory or self._temp / "repo"
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "LC_ALL": "C"}
        self.config: list[str] = ["-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always"]
        for key, value in ((props.get("gitConfig") or {}).items() if isinstance(props.get("gitConfig"), dict) else []):
            self.config += ["-c", f"{key}={ctx.render_string(value)}"]
        if self.password is not None and self.url.startswith(("http://", "https://")):
            helper = self._temp / "credentials.sh"
            # the helper reads the secret from the environment: it never lands in a file or the URL
            helper.write_text("#!/bin/sh\necho \"username=$CELESTRA_GIT_USER\"\necho \"password=$CELESTRA_GIT_PASSWORD\"\n")
            helper.chmod(0o700)
            self.env["CELESTRA_GIT_USER"] = self.username or "git"
            self.env["CELESTRA_GIT_PASSWORD"] = self.password
            self.config += ["-c", "credential.helper=", "-c", f"credential.helper={helper}"]
        if self.private_key:
            key = self._temp / "id_key"
            key.write_text(self.private_key.strip() + "\n")
            key.chmod(0o600)
            self.env["GIT_SSH_COMMAND"] = f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "******")
        return text

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(["git", *self.config, *args], cwd=str(cwd or self.directory), env=self.env,
                                  capture_output=True, text=True, timeout=600)
        except FileNotFoundError:
            raise TaskFailure("The git command is not installed on this worker") from None
        except subprocess.TimeoutExpired:
            raise TaskFailure(f"git {args[0]} did not finish within 600 s") from None
        if check and done.returncode != 0:
            message = self.mask((done.stderr or done.stdout).strip())
            raise TaskFailure(f"git {args[0]} failed for {self.mask(self.url)}: {message}")
        return done

    def clone(self, branch: str | None, *, depth: int | None = None, submodules: bool = False,
              create_branch: bool = False) -> None:
        """Clone ``branch`` (the default branch when None); with ``create_branch`` a missing branch is
        created from the default one (or as the first branch of an empty repository)."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        args = ["clone", "--quiet"]
        if depth:
            args += ["--depth", str(depth)]
        if submodules:
            args.append("--recurse-submodules")
        exists = branch is None or self.branch_exists(branch)
        if branch and exists:
            args += ["--branch", branch]
        if not exists and not create_branch:
            raise TaskFailure(f"Branch '{branch}' does not exist in {self.mask(self.url)}")
        self.git(*args, self.url, str(self.directory), cwd=self.directory.parent)
        if branch and not exists:
            self.git("checkout", "--quiet", "-b", branch)

    def branch_exists(self, branch: str) -> bool:
        done = self.git("ls-remote", "--heads", self.url, branch, cwd=self._temp)
        return bool(done.stdout.strip())

    def head(self) -> str | None:
        done = self.git("rev-parse", "HEAD", check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def close(self) -> None:
        shutil.rmtree(self._temp, ignore_errors=True)


def git_directory(ctx: RunContext, props: dict[str, Any], default: str) -> str:
    """``gitDirectory``: a relative path inside the repository."""
    value = (render_text(ctx, props.get("gitDirectory")) or default).strip().strip("/")
    if not value or ".." in value.split("/") or value.startswith("/"):
        raise TaskFailure(f"Invalid value for 'gitDirectory': `{value}` must be a relative path in the repository")
    return value


def http_url(url: str) -> str | None:
    """The web address of a repository (commit URLs), for http(s) and ``git@host:path`` URLs."""
    match = re.match(r"^git@([^:]+):(.+?)(?:\.git)?$", url)
    if match:
        return f"https://{match.group(1)}/{match.group(2)}"
    if url.startswith(("http://", "https://")):
        return re.sub(r"\.git$", "", re.sub(r"//[^@/]+@", "//", url))
    return None


def diff_rows(repo: GitRepo) -> list[dict[str, str]]:
    """Kestra's push diff: one ``{file, additions, deletions, changes}`` row per staged file; a replaced
    block counts its size difference as additions or deletions, and same-size replacements as changes."""
    import difflib

    done = repo.git("diff", "--cached", "--name-status", "--no-renames")
    rows = []
    for line in done.stdout.splitlines():
        status, _, path = line.partition("\t")
        old = repo.git("show", f"HEAD:{path}", check=False).stdout if status != "A" else ""
        new = (repo.directory / path).read_text(errors="replace") if status != "D" else ""
        additions = deletions = changes = 0
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(),
                                                           autojunk=False).get_opcodes():
            delta = (j2 - j1) - (i2 - i1)
            if tag == "equal":
                continue
            if delta > 0:
                additions += delta
            elif delta < 0:
                deletions += -delta
            else:
                changes += j2 - j1
        rows.append({"file": path, "additions": f"+{additions}", "deletions": f"-{deletions}",
                     "changes": str(changes)})
    return rows


def commit_and_push(repo: GitRepo, ctx: RunContext, props: dict[str, Any], branch: str, message: str) -> dict[str, Any]:
    """Commit what is staged and push it (unless ``dryRun``); ``{commitId, commitURL}`` (None when nothing
    changed or in a dry run)."""
    if render_bool(ctx, props.get("dryRun"), False):
        ctx.log("INFO", f"Dry run: no changes will be pushed to {repo.mask(repo.url)} until 'dryRun' is false")
        return {"commitId": None, "commitURL": None}
    if not repo.git("diff", "--cached", "--name-only").stdout.strip():
        ctx.log("INFO", "No changes to commit. Skipping push.")
        return {"commitId": None, "commitURL": None}
    name = render_text(ctx, props.get("authorName")) or repo.username or DEFAULT_AUTHOR[0]
    email = render_text(ctx, props.get("authorEmail")) or DEFAULT_AUTHOR[1]
    repo.git("-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "--quiet", "-m", message)
    ctx.log("INFO", f"Pushing to {repo.mask(repo.url)} on branch {branch}")
    repo.git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
    commit = repo.head()
    web = http_url(repo.url)
    return {"commitId": commit, "commitURL": f"{web}/commit/{commit}" if web and commit else None}


def store_rows(ctx: RunContext, rows: list[dict[str, Any]]) -> str:
    from orchestrator.plugins.core._ion import ion_dumps

    return platform_of(ctx).put_file("".join(ion_dumps(row) + "\n" for row in rows).encode("utf-8"), extension=".ion")
