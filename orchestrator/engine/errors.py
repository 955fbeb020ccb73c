"""One exception hierarchy for the engine."""
from __future__ import annotations


class CelestraError(Exception):
    """Base of every error Celestra raises on purpose."""


class FlowNotFound(CelestraError):
    pass


class IllegalVariableEvaluation(CelestraError):
    """An expression could not be rendered (undefined variable, bad filter arguments...)."""


class InputValidationError(CelestraError):
    """One or more execution inputs are invalid.

    ``errors`` is a list of ``(input_id, message)``; ``str(exc)`` joins the messages.
    """

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__(", ".join(message for _, message in errors))


class TaskFailure(CelestraError):
    """Raised by a runnable task to end its attempt FAILED with a message (logged at ERROR)."""


class TaskKilled(CelestraError):
    pass
