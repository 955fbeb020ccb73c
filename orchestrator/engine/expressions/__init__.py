"""Kestra's Pebble expression language (``{{ ... }}`` / ``{% ... %}``), run on a sandboxed Jinja2.

Pebble templates are translated to Jinja source whose every operator, filter and function is a
Pebble-compatible helper, then compiled once and cached. The public API:

* ``render(value, context, deadline=None)``: renders str/list/dict recursively. A string without ``{{`` and ``{%`` is
  returned as is; a string that is exactly one ``{{ expr }}`` returns the raw value (typed rendering);
  any other string renders to text.
* ``render_string(value, context)``: always text.
* ``render_typed(text, context)``: the typed path for one string (text when it is not a single expression).
* ``is_truthy(value)``: Kestra's truthiness of a rendered condition.
* ``build_envs(environ, prefix)``: the ``envs`` context variable.

The context is a plain dict (``flow``, ``execution``, ``inputs``, ``outputs``...). Functions that need
the platform (``secret``, ``kv``, ``read``, ``fileSize``, ``fileExists``, ``errorLogs``,
``tasksWithState``) call the object found under the ``"__services__"`` key.

Every top-level render runs under a time budget (``configure_limits(time_budget=...)``, capped by a
``deadline`` given by the caller, e.g. the task's timeout) and size limits; running past either fails
the render with an ``ExpressionError`` (``ExpressionTimeout`` for time) instead of hanging.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _dates, _runtime, _values
from ._dates import default_time_zone
from ._engine import begin_render, compile_template, end_render, run_text, run_typed
from ._errors import ExpressionError, ExpressionTimeout
from ._runtime import MAX_COLLECTION_SIZE, MAX_LOOP_ITERATIONS, MAX_OUTPUT_CHARS
from ._values import to_text

__all__ = [
    "ExpressionError", "ExpressionTimeout", "configure_limits", "render", "render_string", "render_typed", "is_truthy", "build_envs",
    "set_default_time_zone", "default_time_zone", "MAX_OUTPUT_CHARS", "MAX_LOOP_ITERATIONS",
    "MAX_COLLECTION_SIZE",
]

_FALSE_TEXT = ("", "0", "-0")


def _needs_rendering(text: str) -> bool:
    return "{{" in text or "{%" in text


def render(value: Any, context: Mapping[str, Any], deadline: float | None = None) -> Any:
    """Render a property value: strings (typed when one ``{{ }}``), lists and dicts recursively.

    The whole value shares one time budget; ``deadline`` (a ``time.monotonic()`` instant) caps it.
    """
    if isinstance(value, str) and "{{" not in value and "{%" not in value:
        return value
    token = begin_render(deadline)
    try:
        return _render(value, context)
    finally:
        end_render(token)


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        return run_typed(compile_template(value), context)
    if isinstance(value, dict):
        return {(render_string(k, context) if isinstance(k, str) and _needs_rendering(k) else k): _render(v, context)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    if isinstance(value, tuple):
        return tuple(_render(item, context) for item in value)
    return value


def render_string(value: Any, context: Mapping[str, Any], deadline: float | None = None) -> str:
    """Render to text, whatever the template holds (maps and lists print as JSON)."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        token = begin_render(deadline)
        try:
            return run_text(compile_template(value), context)
        finally:
            end_render(token)
    if value is None:
        return ""
    return to_text(render(value, context, deadline))


def configure_limits(time_budget: float | None = None, max_output_chars: int | None = None,
                     max_loop_iterations: int | None = None, max_collection_size: int | None = None) -> None:
    """Set the process-wide limits of a render (Django settings call it once at start-up)."""
    if time_budget is not None:
        _runtime.TIME_BUDGET = float(time_budget)
    if max_output_chars is not None:
        _runtime.MAX_OUTPUT_CHARS = int(max_output_chars)
        _values.MAX_JSON_CHARS = int(max_output_chars)
    if max_loop_iterations is not None:
        _runtime.MAX_LOOP_ITERATIONS = int(max_loop_iterations)
    if max_collection_size is not None:
        _runtime.MAX_COLLECTION_SIZE = int(max_collection_size)


def render_typed(text: Any, context: Mapping[str, Any]) -> Any:
    """The typed path for one value: the raw result of a single ``{{ expr }}``, else rendered text."""
    return render(text, context)


def set_default_time_zone(name: str | None) -> None:
    """Zone of date filters and ``now()`` without ``timeZone`` (Kestra uses the server zone; default UTC)."""
    _dates.set_default_time_zone(name)
    compile_template.cache_clear()  # constant date expressions may have been folded at compile time


def is_truthy(value: Any) -> bool:
    """Kestra's condition truthiness: false iff the text is ``false`` (any case), ``0``, ``-0`` or blank."""
    if value is None:
        return False
    if value is True or value is False:
        return value
    text = (value if isinstance(value, str) else to_text(value)).strip()
    return not (text in _FALSE_TEXT or text.lower() == "false")


def build_envs(environ: Mapping[str, str], prefix: str = "ENV_",
               legacy_prefixes: tuple[str, ...] = ("KESTRA_",)) -> dict[str, str]:
    """The ``envs`` variable: environment variables starting with ``prefix``, prefix removed, lower-cased.

    ``ENV_MY_VAR`` becomes ``envs.my_var``. Kestra 0.x used the ``KESTRA_`` prefix; variables with a
    legacy prefix are exposed too, but a variable with the configured prefix wins on a name clash.
    """
    envs: dict[str, str] = {}
    for legacy in legacy_prefixes:
        if legacy and legacy != prefix:
            for name, value in environ.items():
                if name.startswith(legacy) and len(name) > len(legacy):
                    envs[name[len(legacy):].lower()] = value
    for name, value in environ.items():
        if prefix and name.startswith(prefix) and len(name) > len(prefix):
            envs[name[len(prefix):].lower()] = value
    return envs

