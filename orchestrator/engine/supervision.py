"""The live process groups started by task attempts in this process, and how to stop them.

A script task starts its process in a session of its own (``start_new_session=True``), so the
process and everything it starts share one process group whose id is the leader's pid. The task
registers that group here while it runs; whatever has to stop the work from outside the attempt
(a worker's kill, timeout or shutdown path, a pool process about to exit) calls
:func:`terminate_all` so that no child outlives its task.

Pure Python (``os``/``signal``): no Django, Celery or runtime import.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("celestra.supervision")

#: seconds between SIGTERM and SIGKILL when nothing else is said
DEFAULT_GRACE = 0.5


@dataclass(frozen=True)
class LiveGroup:
    pgid: int
    label: str                       # "<execution id>/<task id>" or alike, for logs
    started: float = field(default_factory=time.monotonic)


_lock = threading.Lock()
_groups: dict[int, LiveGroup] = {}


def register(pgid: int, label: str = "") -> LiveGroup:
    """Record a live process group (its leader was started with ``start_new_session=True``)."""
    group = LiveGroup(pgid, label)
    with _lock:
        _groups[pgid] = group
    return group


def unregister(pgid: int) -> None:
    with _lock:
        _groups.pop(pgid, None)


def live_groups() -> list[LiveGroup]:
    with _lock:
        return list(_groups.values())


def group_alive(pgid: int) -> bool:
    """True while some process of the group exists (zombies not reaped yet count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group exists, owned by another user (a script run as another user)
        return True
    return True


def _signal(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(pgid: int, grace: float = DEFAULT_GRACE, *, reap: Callable[[], Any] | None = None) -> None:
    """Stop a process group: SIGTERM, then SIGKILL once ``grace`` seconds have passed.

    ``reap`` (the leader's ``Popen.poll``) lets the caller collect its own child, whose zombie
    would otherwise keep the group alive until it is waited for.
    """
    _signal(pgid, signal.SIGTERM)
    deadline = time.monotonic() + max(grace, 0)
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            break
        time.sleep(0.01)
    # SIGKILL even when the group looks gone: a member may still be exiting, and a group id is
    # not reused while any member lives, so this cannot hit a stranger.
    _signal(pgid, signal.SIGKILL)
    if reap is not None:
        reap()


def terminate_all(grace: float = DEFAULT_GRACE) -> list[int]:
    """Stop every registered group (SIGTERM to all, one shared grace, then SIGKILL); returns their ids.

    For a worker's shutdown, kill or hard-timeout path: the attempts that started these groups
    are about to lose their process, and their scripts must not run on unsupervised.
    """
    groups = live_groups()
    for group in groups:
        log.warning("stopping process group %s of %s", group.pgid, group.label or "a task")
        _signal(group.pgid, signal.SIGTERM)
    deadline = time.monotonic() + max(grace, 0)
    while time.monotonic() < deadline and any(group_alive(g.pgid) for g in groups):
        time.sleep(0.01)
    for group in groups:
        _signal(group.pgid, signal.SIGKILL)
        unregister(group.pgid)
    return [g.pgid for g in groups]
