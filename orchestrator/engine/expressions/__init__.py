"""Kestra's Pebble expression language (``{{ ... }}`` / ``{% ... %}``), run on a sandboxed Jinja2.

Pebble templates are translated to Jinja source whose every operator, filter and function is a
Pebble-compatible helper, then compiled once and cached. The public API:

* ``render(value, context)``: renders str/list/dict recursively. A string without ``{{`` and ``{%`` is
  returned as is; a string that is exactly one ``{{ expr }}`` returns the raw value (typed rendering);
  any other string renders to text.
* ``render_string(value, context)``: always text.
* ``render_typed(text, context)``: the typed path for one string (text when it is not a single expression).
* ``is_truthy(value)``: Kestra's truthiness of a rendered condition.
* ``build_envs(environ, prefix)``: the ``envs`` context variable.

The context is a plain dict (``flow``, ``execution``, ``inputs``, ``outputs``...). Functions that need
the platform (``secret``, ``kv``, ``read``, ``fileSize``, ``fileExists``, ``errorLogs``,
``tasksWithState``) call the object found under the ``"__services__"`` key.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _dates
from ._dates import default_time_zone
from ._engine import compile_template, run_text, run_typed
from ._errors import ExpressionError
from ._runtime import MAX_COLLECTION_SIZE, MAX_LOOP_ITERATIONS, MAX_OUTPUT_CHARS
from ._values import to_text

__all__ = [
    "ExpressionError", "render", "render_string", "render_typed", "is_truthy", "build_envs",
    "set_default_time_zone", "default_time_zone", "MAX_OUTPUT_CHARS", "MAX_LOOP_ITERATIONS",
    "MAX_COLLECTION_SIZE",
]

_FALSE_TEXT = ("", "0", "-0")


def _needs_rendering(text: str) -> bool:
    return "{{" in text or "{%" in text


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render a property value: strings (typed when one ``{{ }}``), lists and dicts recursively."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        return run_typed(compile_template(value), context)
    if isinstance(value, dict):
        return {(render_string(k, context) if isinstance(k, str) and _needs_rendering(k) else k): render(v, context)
                for k, v in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, tuple):
        return tuple(render(item, context) for item in value)
    return value


def render_string(value: Any, context: Mapping[str, Any]) -> str:
    """Render to text, whatever the template holds (maps and lists print as JSON)."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        return run_text(compile_template(value), context)
    if value is None:
        return ""
    return to_text(render(value, context))


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

