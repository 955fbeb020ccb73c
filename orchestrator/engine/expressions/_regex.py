"""Regular expressions of flows, under the render's time budget.

Kestra evaluates ``matches``, ``replace(..., regexp=true)``, ``split`` and REGEX validators with
``java.util.regex``, a backtracking engine, so catastrophic patterns such as ``(a+)+$`` are valid
there and must stay valid here. The ``regex`` package is also a backtracking engine with Python's
``re`` syntax, and its matching functions take a ``timeout``: a runaway match stops at the render's
deadline instead of freezing the process. docs/compatibility.md lists what differs from Java's syntax.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import regex

from ._errors import ExpressionError, ExpressionTimeout

#: Timeout of a regular expression used outside a render (input validation, API filters). The
#: ``regex`` package counts the CPU time of the match, so on a busy machine the wall time is longer.
DEFAULT_TIMEOUT = 0.5

Pattern = Any  # regex.Pattern


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Pattern:
    """Compile with Python's ``re`` semantics (``regex`` VERSION0); an invalid pattern names itself."""
    try:
        return regex.compile(pattern, regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise ExpressionError(f"Invalid regular expression '{pattern}': {exc}") from None


def _timed(pattern: str, call: Callable[[], Any], timeout: float) -> Any:
    try:
        return call()
    except TimeoutError:
        from ._runtime import budget_of_render

        raise ExpressionTimeout(f"The regular expression '{pattern[:200]}' ran past the time budget "
                                f"of {budget_of_render(timeout)}") from None


def fullmatch(pattern: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Java's ``String.matches``: the whole text matches."""
    compiled = compile_regex(pattern)
    return _timed(pattern, lambda: compiled.fullmatch(text, timeout=timeout), timeout) is not None


def search(pattern: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Java's ``Matcher.find``: the pattern occurs somewhere in the text."""
    compiled = compile_regex(pattern)
    return _timed(pattern, lambda: compiled.search(text, timeout=timeout), timeout) is not None


def sub(pattern: str, replacement: Callable[[Any], str], text: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    compiled = compile_regex(pattern)
    return _timed(pattern, lambda: compiled.sub(replacement, text, timeout=timeout), timeout)


def finditer(pattern: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
    compiled = compile_regex(pattern)
    return _timed(pattern, lambda: list(compiled.finditer(text, timeout=timeout)), timeout)
