"""Errors raised while compiling or rendering an expression."""
from __future__ import annotations

from orchestrator.engine.errors import IllegalVariableEvaluation


class ExpressionError(IllegalVariableEvaluation):
    """An expression could not be compiled or rendered.

    It subclasses the engine's ``IllegalVariableEvaluation`` so that callers that only know the engine
    error hierarchy (task runners, the executor) fail the task run the way Kestra does.
    """

    #: True once the message names the expression and its line; outer renders must not wrap it again.
    located: bool = False


class MissingVariable(Exception):
    """A variable, map key, list index or attribute does not exist.

    It mirrors Pebble's ``AttributeNotFoundException``: the ``??``/``???`` operators, the ``defined`` test
    and the ``default`` filter catch it; anywhere else it becomes the ExpressionError
    "Unable to find `name` used in the expression ...". It is an internal signal, never raised to callers.
    """

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class ExpressionTimeout(ExpressionError):
    """A render ran past its time budget (the expression setting, capped by the task's timeout)."""
