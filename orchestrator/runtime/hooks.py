"""Extension points of the executor step, called by ``orchestrator.runtime.tasks.step``.

* :func:`after_decision` runs inside the step's transaction, with the execution locked, after the
  engine decided and before the decision is stored: it may change the execution (SLA checks).
* :func:`on_execution_end` runs after commit, once per execution that reached a terminal state
  in this step: Flow triggers of other flows, parent notification.
"""
from __future__ import annotations

from typing import Any


def after_decision(flow: Any, execution: Any, decision: Any) -> None:
    from .flow_triggers import on_state_change
    from .sla import check_sla

    check_sla(flow, execution, decision)
    on_state_change(flow, execution, decision)


def on_execution_end(execution_id: str) -> None:
    from .flow_triggers import fire_flow_triggers

    fire_flow_triggers(execution_id)
