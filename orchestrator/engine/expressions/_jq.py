"""jq programs run in supervised sandbox processes.

The ``jq`` binding cannot be interrupted once a program runs (``def f: f; f`` never returns) and its
``$ENV``/``env`` read the server's environment, so programs do not run in the server process: a small
pool of child processes (``_jq_child.py``) runs them with an empty environment and a memory limit.
A program that runs past the render's remaining budget has its process killed; the pool starts a new
one on the next call.
"""
from __future__ import annotations

import json
import logging
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._errors import ExpressionTimeout

log = logging.getLogger(__name__)

_CHILD = str(Path(__file__).with_name("_jq_child.py"))
#: Idle processes kept per server process.
POOL_SIZE = 2
#: Address-space limit of a jq process, bytes.
MEMORY_LIMIT = 512 * 1024 * 1024
# jq modules read files from the server's disk (`import "/some/path" as $data;`); Kestra's jq has none.
_MODULE_DIRECTIVE = re.compile(r"\A(?:\s|#[^\n]*\n)*(?:import|include|module)\b")


class JqFailure(Exception):
    """The program failed inside jq: ``kind`` is ``compile``, ``value``, ``memory`` or ``size``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class _Process:
    def __init__(self, max_chars: int) -> None:
        self.cwd = tempfile.mkdtemp(prefix="celestra-jq-")
        self.popen = subprocess.Popen(
            [sys.executable, "-I", _CHILD, str(MEMORY_LIMIT), str(max_chars)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={}, cwd=self.cwd, close_fds=True, start_new_session=True)
        self.buffer = b""

    def ask(self, request: bytes, deadline: float) -> dict[str, Any]:
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write(request)
        self.popen.stdin.flush()
        fd = self.popen.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.popen.kill()
        except OSError:
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a killed process always ends
            log.warning("jq process %s did not end after SIGKILL", self.popen.pid)
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            os.rmdir(self.cwd)
        except OSError:
            pass


class JqPool:
    """Idle jq processes of this server process; safe to use from several threads."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._idle: list[_Process] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _take(self, max_chars: int) -> _Process:
        with self._lock:
            if self._pid != os.getpid():  # forked (Celery prefork): the parent's processes are not ours
                self._idle = []
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        return _Process(max_chars)

    def _give_back(self, process: _Process) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < self.size:
                self._idle.append(process)
                return
        process.close()

    def run(self, program: str, text: str | None, value: Any, timeout: float, max_chars: int) -> list[Any]:
        if _MODULE_DIRECTIVE.match(program):
            raise JqFailure("compile", "jq modules (import, include) are not available")
        payload: dict[str, Any] = {"p": program}
        if text is not None:
            payload["t"] = text
        else:
            payload["v"] = value
        try:
            request = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        except (TypeError, ValueError) as exc:
            raise JqFailure("value", str(exc)) from None
        deadline = time.monotonic() + max(timeout, 0.0)
        process = self._take(max_chars)
        try:
            answer = process.ask(request, deadline)
        except TimeoutError:
            process.close()
            raise ExpressionTimeout(f"The jq program '{program[:200]}' ran past the time budget") from None
        except (EOFError, OSError, ValueError):
            code = process.popen.poll()
            process.close()
            raise JqFailure("memory", f"the jq program '{program[:200]}' stopped the jq process"
                            + (f" (exit code {code})" if code is not None else "")) from None
        self._give_back(process)
        if "ok" in answer:
            return answer["ok"]
        raise JqFailure(answer.get("error", "value"), answer.get("message", ""))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for process in idle:
            process.close()


POOL = JqPool()


def run_jq(program: str, text: str | None, value: Any, timeout: float, max_chars: int) -> list[Any]:
    if timeout <= 0:
        raise ExpressionTimeout(f"The jq program '{program[:200]}' ran past the time budget")
    return POOL.run(program, text, value, timeout, max_chars)
