"""Execution and task run states (Kestra §8.1), as string constants in frozenset groups."""
from __future__ import annotations

CREATED = "CREATED"
SUBMITTED = "SUBMITTED"
QUEUED = "QUEUED"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
RESTARTED = "RESTARTED"
KILLING = "KILLING"
RETRYING = "RETRYING"
BREAKPOINT = "BREAKPOINT"
SUCCESS = "SUCCESS"
WARNING = "WARNING"
FAILED = "FAILED"
KILLED = "KILLED"
CANCELLED = "CANCELLED"
RETRIED = "RETRIED"
SKIPPED = "SKIPPED"
RESUBMITTED = "RESUBMITTED"

ALL_STATES = frozenset({
    CREATED, SUBMITTED, QUEUED, RUNNING, PAUSED, RESTARTED, KILLING, RETRYING, BREAKPOINT,
    SUCCESS, WARNING, FAILED, KILLED, CANCELLED, RETRIED, SKIPPED, RESUBMITTED,
})
TERMINATED = frozenset({SUCCESS, WARNING, FAILED, KILLED, CANCELLED, RETRIED, SKIPPED, RESUBMITTED})
CREATED_LIKE = frozenset({CREATED, RESTARTED})
RUNNING_LIKE = frozenset({RUNNING, KILLING})
FAILED_LIKE = frozenset({FAILED, KILLED})
#: Terminal states that let the next sequential task start.
SUCCESS_LIKE = frozenset({SUCCESS, WARNING, SKIPPED})


def is_terminated(state: str) -> bool:
    return state in TERMINATED


def guess_final_state(states: "list[str] | set[str]") -> str:
    """Kestra's precedence over the states of the relevant task runs (§8.4)."""
    present = set(states)
    for candidate in (KILLED, FAILED, WARNING, PAUSED):
        if candidate in present:
            return candidate
    return SUCCESS


def apply_failure_policy(state: str, allow_failure: bool, allow_warning: bool) -> str:
    """allowFailure turns FAILED into WARNING; allowWarning turns WARNING into SUCCESS."""
    if state == FAILED and allow_failure:
        state = WARNING
    if state == WARNING and allow_warning:
        state = SUCCESS
    return state
