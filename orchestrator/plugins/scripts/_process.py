"""The Process task runner: one script as a local process group, supervised while it runs.

1. The process starts in a session of its own (``start_new_session=True``): it and every child
   it starts form one process group, registered in :mod:`orchestrator.engine.supervision`.
2. Two threads read stdout and stderr line by line into a :class:`LogConsumer` as the lines come.
3. The calling thread waits for the leader, polling the run context's ``timed_out()`` and
   ``cancelled()`` and publishing the gathered log lines (``publish_logs()``, where the context
   has it) about twice a second, so that the API shows them while the script runs.
4. On timeout or kill the whole group gets SIGTERM, then SIGKILL after the grace period, and the
   attempt ends with TaskKilled. When the leader exits, what it left running in its group is
   stopped the same way: a task leaves no process behind.
"""
from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable

from orchestrator.engine import supervision
from orchestrator.engine.errors import TaskKilled

from ._protocol import LogConsumer

PUBLISH_EVERY = 0.5
POLL = 0.02


@dataclass
class ProcessResult:
    exit_code: int
    stdout_lines: int
    stderr_lines: int
    vars: dict[str, Any]


def _reader(stream: IO[bytes], on_line: Callable[[str, bool], None], stderr: bool) -> None:
    try:
        for raw in iter(stream.readline, b""):
            on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"), stderr)
    except Exception as exc:  # noqa: BLE001 - a reading error is reported as an error line, as Kestra does
        on_line(str(exc), True)
    finally:
        stream.close()


def _check(ctx: Any) -> str | None:
    timed_out = getattr(ctx, "timed_out", None)
    if timed_out is not None and timed_out():
        return "Timeout"
    cancelled = getattr(ctx, "cancelled", None)
    if cancelled is not None and cancelled():
        return "Killed"
    return None


def run_process(ctx: Any, argv: list[str], *, cwd: str, env: dict[str, str], grace: float,
                consumer: LogConsumer | None = None, on_line: Callable[[str, bool], None] | None = None,
                publish: bool = True, user: Any = None, group: Any = None, label: str = "") -> ProcessResult:
    """Run ``argv`` to its end (see the module's steps); raises TaskKilled on timeout or kill."""
    consumer = consumer if consumer is not None else LogConsumer(ctx)
    sink = on_line or consumer.accept
    extra: dict[str, Any] = {}
    if user is not None:
        extra.update(user=user, group=group, extra_groups=[])
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, close_fds=True, **extra)
    pgid = proc.pid
    supervision.register(pgid, label)
    readers = [threading.Thread(target=_reader, args=(proc.stdout, sink, False), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, sink, True), daemon=True)]
    for thread in readers:
        thread.start()
    publisher = getattr(ctx, "publish_logs", None) if publish else None
    last_publish = time.monotonic()
    stopped: str | None = None
    try:
        while True:
            stopped = _check(ctx)
            if stopped:
                break
            if proc.poll() is None:
                if readers[0].is_alive():
                    readers[0].join(POLL)
                else:
                    try:
                        proc.wait(POLL)
                    except subprocess.TimeoutExpired:
                        pass
            elif any(t.is_alive() for t in readers):
                # the leader is gone: what it left in its group (and may hold the pipes) is stopped
                supervision.terminate(pgid, grace, reap=proc.poll)
                for thread in readers:
                    thread.join(POLL)
            else:
                break
            if publisher is not None and time.monotonic() - last_publish >= PUBLISH_EVERY:
                publisher()
                last_publish = time.monotonic()
    finally:
        if stopped or proc.poll() is None or supervision.group_alive(pgid):
            supervision.terminate(pgid, grace, reap=proc.poll)
        supervision.unregister(pgid)
        for thread in readers:
            thread.join(2)
        proc.wait()
    if stopped:
        raise TaskKilled(stopped)
    return ProcessResult(proc.returncode, consumer.stdout_lines, consumer.stderr_lines, consumer.vars)
