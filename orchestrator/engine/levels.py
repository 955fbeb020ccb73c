"""Log levels (Kestra's ``org.slf4j.event.Level``), most severe first: the one set of constants."""
from __future__ import annotations

ERROR = "ERROR"
WARN = "WARN"
INFO = "INFO"
DEBUG = "DEBUG"
TRACE = "TRACE"

#: most severe first, as Kestra orders them
LEVELS = (ERROR, WARN, INFO, DEBUG, TRACE)

__all__ = ["DEBUG", "ERROR", "INFO", "LEVELS", "TRACE", "WARN", "level_at_least"]


def level_at_least(level: str, minimum: str) -> bool:
    """``level`` is as severe as ``minimum`` or more (ERROR > WARN > INFO > DEBUG > TRACE);
    ``WARNING`` reads as ``WARN``, an unknown level passes."""
    level = WARN if level == "WARNING" else (level or INFO).upper()
    minimum = WARN if minimum == "WARNING" else (minimum or INFO).upper()
    if level not in LEVELS or minimum not in LEVELS:
        return True
    return LEVELS.index(level) <= LEVELS.index(minimum)
