"""Flow ``checks``: conditions on the inputs evaluated before an execution is created.

Kestra (``FlowService.getFailedChecks``, ``Check.resolveBehavior``) renders each condition against
``inputs`` (and the flow); a check *fails* when its condition does not render to the boolean ``true``
(a text such as ``"true"`` without an expression fails too, as ``Boolean.TRUE.equals`` does). A
condition that cannot be rendered is a failing check of its own, ``BLOCK_EXECUTION`` / ``ERROR``,
whose message gives the cause. The behaviour applied is the strongest of the failing checks':
``BLOCK_EXECUTION`` > ``FAIL_EXECUTION`` > ``CREATE_EXECUTION``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from . import expressions
from .errors import CelestraError

log = logging.getLogger("celestra.checks")

BLOCK_EXECUTION = "BLOCK_EXECUTION"
FAIL_EXECUTION = "FAIL_EXECUTION"
CREATE_EXECUTION = "CREATE_EXECUTION"
#: strongest first (Kestra's enum order)
BEHAVIORS = (BLOCK_EXECUTION, FAIL_EXECUTION, CREATE_EXECUTION)

#: the WARN line of an execution created FAILED by a check (Kestra's words)
FAILED_LOG = "Flow execution failed because one or more condition checks evaluated to false."


class ExecutionBlocked(CelestraError):
    """A failing ``BLOCK_EXECUTION`` check refused the creation; ``checks`` are the failing ones."""

    def __init__(self, failed: list[dict[str, Any]]):
        self.checks = failed
        super().__init__(blocked_message(failed))


def condition_of(check: Mapping[str, Any]) -> Any:
    """The check's condition: ``condition`` (1.x) or ``when`` (2.0), whichever the flow gives."""
    value = check.get("condition")
    return check.get("when") if value is None else value


def failed_checks(checks: list[dict[str, Any]], inputs: Mapping[str, Any], context: Mapping[str, Any] | None = None,
                  render: Callable[[Any, Mapping[str, Any]], Any] = expressions.render_typed) -> list[dict[str, Any]]:
    """The checks whose condition is not ``true`` for ``inputs``, in declaration order."""
    if not checks:
        return []
    variables = {**(context or {}), "inputs": dict(inputs)}
    failed: list[dict[str, Any]] = []
    for check in checks:
        try:
            result = render(condition_of(check), variables)
        except CelestraError as exc:
            log.debug("check condition %r could not be rendered: %s", condition_of(check), exc)
            failed.append({"condition": condition_of(check), "style": "ERROR", "behavior": BLOCK_EXECUTION,
                           "message": f"Failed to evaluate check condition. Cause: {exc}"})
            continue
        if result is not True:
            failed.append(dict(check))
    return failed


def resolve_behavior(failed: list[dict[str, Any]]) -> str:
    """The behaviour to apply: the strongest among the failing checks (none failing: create)."""
    found = [check.get("behavior") or BLOCK_EXECUTION for check in failed]
    for behavior in BEHAVIORS:
        if behavior in found:
            return behavior
    return CREATE_EXECUTION


def blocked_message(failed: list[dict[str, Any]]) -> str:
    return ("Flow execution blocked: one or more condition checks evaluated to false.\nFailed checks: "
            + ", ".join(str(check.get("message")) for check in failed))


def check_failures(failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failing checks as the validate answer shows them (Kestra's ``ApiCheckFailure``)."""
    return [{"message": check.get("message"), "style": check.get("style") or "INFO",
             "behavior": check.get("behavior") or BLOCK_EXECUTION} for check in failed]
