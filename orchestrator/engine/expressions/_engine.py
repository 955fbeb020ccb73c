"""The Jinja environment that runs translated Pebble templates, its compile cache and error reporting."""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any, Callable

from jinja2 import TemplateSyntaxError, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from . import _runtime as rt
from ._checks import TESTS
from ._errors import ExpressionError, MissingVariable
from ._filters import FILTERS
from ._functions import FUNCTIONS, call_method
from ._translate import translate
from ._values import Entry, PebbleUndefined, missing_name, to_text

log = logging.getLogger(__name__)

_TEMPLATE_FILENAME = "<template>"
_RAW_BLOCK = re.compile(r"\{%-*\s*raw\s*-*%\}(.*?)\{%-*\s*endraw\s*-*%\}", re.DOTALL)

# Filters whose operand must be evaluated lazily: the code generator wraps operands in lambdas.
_LAZY_FILTERS = {"_p_nc": "p_nc", "_p_uc": "p_uc", "_p_def": "p_def", "_p_default": "p_default"}

_HELPERS: dict[str, Any] = {
    "_p_s": rt.strict, "_p_strict": rt.strict, "_p_nn": rt.strict_not_null,
    "_p_getv": rt.namespace_get, "_p_newns": rt.new_namespace,
    "_p_b": rt.to_bool, "_p_tb": rt.ternary_bool, "_p_ifb": rt.if_bool, "_p_notnull": rt.not_null,
    "_p_iter": rt.iterate,
    "_p_eq": rt.equals, "_p_ne": rt.not_equals, "_p_lt": rt.less, "_p_gt": rt.greater,
    "_p_le": rt.less_equal, "_p_ge": rt.greater_equal,
    "_p_add": rt.add, "_p_sub": rt.subtract, "_p_mul": rt.multiply, "_p_div": rt.divide, "_p_mod": rt.modulo,
    "_p_neg": rt.negate, "_p_pos": rt.positive, "_p_cat": rt.concat, "_p_interp": rt.interpolate,
    "_p_range": rt.make_range, "_p_contains": rt.contains, "_p_in": rt.is_in, "_p_notin": rt.not_in,
    "_p_nc": rt.null_coalesce_value, "_p_uc": rt.undefined_coalesce_value, "_p_def": rt.defined_value,
    "_p_default": rt.default_value, "_p_method": call_method,
}


def _budgeted(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter or function that first checks the render's deadline (a loop of calls cannot run on)."""
    check = rt.check_deadline

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        check()
        return function(*args, **kwargs)
    return call


class PebbleCodeGenerator(CodeGenerator):
    """Jinja's code generator, plus lazy operands for ``??``, ``???``, ``is defined`` and ``default``."""

    def visit_Filter(self, node: nodes.Filter, frame: Frame) -> None:  # noqa: N802 - Jinja visitor name
        helper = _LAZY_FILTERS.get(node.name)
        if helper is None or node.node is None:
            super().visit_Filter(node, frame)
            return
        self.write(f"environment.{helper}((lambda: ")
        self.visit(node.node, frame)
        self.write(")")
        if node.name in ("_p_nc", "_p_uc"):
            self.write(", (lambda: ")
            self.visit(node.args[0], frame)
            self.write(")")
        elif node.name == "_p_default":
            self.write(", ")
            fallback = node.args[0] if node.args else next(
                (pair.value for pair in node.kwargs if pair.key == "default"), None)
            if fallback is None:
                self.write("None")
            else:
                self.visit(fallback, frame)
        self.write(")")


class PebbleEnvironment(ImmutableSandboxedEnvironment):
    """A sandboxed Jinja environment whose only vocabulary is the Pebble one.

    Attribute and item access only read map entries and list items (never Python attributes), the
    only callables are template macros, and Jinja's own filters, tests and globals are removed.
    """

    code_generator_class = PebbleCodeGenerator

    p_nc = staticmethod(rt.null_coalesce)
    p_uc = staticmethod(rt.undefined_coalesce)
    p_def = staticmethod(rt.defined)
    p_default = staticmethod(rt.default)

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=PebbleUndefined, finalize=to_text, keep_trailing_newline=True,
                         optimized=False, cache_size=0, auto_reload=False)
        self.filters.clear()
        self.filters.update({name: _budgeted(function) for name, function in FILTERS.items()})
        self.filters.update(_HELPERS)
        self.filters["_p_method"] = _budgeted(call_method)
        self.filters.update({f"_f_{name}": _budgeted(function) for name, function in FUNCTIONS.items()})
        self.filters["_p_ctx"] = pass_context(rt.context_lookup)
        self.filters["_p_ctxsoft"] = pass_context(rt.context_lookup_soft)
        self.tests.clear()
        self.tests.update(TESTS)
        self.globals.clear()

    def getitem(self, obj: Any, argument: Any) -> Any:
        return rt.pebble_get(obj, argument)

    def getattr(self, obj: Any, attribute: str) -> Any:
        return rt.pebble_get(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja API
        if isinstance(__obj, Macro):
            rt.check_deadline()  # recursive macros are the other way to run without a loop
            for value in (*args, *kwargs.values()):
                if value.__class__ is PebbleUndefined:
                    raise MissingVariable(missing_name(value))
            return __context.call(__obj, *args, **kwargs)
        if __obj.__class__ is PebbleUndefined:
            raise ExpressionError(f"Function or Macro [{missing_name(__obj)}] does not exist.")
        raise ExpressionError("Only functions and macros can be called")


class _Registry:
    """What the translator may reference: Pebble filter, test and function names."""

    def __init__(self) -> None:
        self.filters = {name: name for name in FILTERS}
        self.tests = {name: name for name in TESTS}
        self.functions = {name: f"_f_{name}" for name in FUNCTIONS}


ENVIRONMENT = PebbleEnvironment()
REGISTRY = _Registry()


def _from_string(source: str) -> Template:
    """Compile Jinja source without running filters: Jinja folds calls with constant arguments at
    compile time, which would run a costly ``jq`` or regex outside any budget (and twice). An expired
    budget makes every filter and function refuse, so Jinja leaves them to the render."""
    token = rt.STATE.set(rt.RenderState(deadline=0.0))
    try:
        return ENVIRONMENT.from_string(source)
    finally:
        rt.STATE.reset(token)


@dataclass
class Compiled:
    source: str
    template: Template | None = None
    static: str | None = None
    expression: Template | None = None
    jinja: str = ""
    single: str | None = None
    single_line: int = 1

    def typed_template(self) -> Template | None:
        """The ``{% set _p_result = expr %}`` template of a single-expression source, compiled on first use."""
        if self.expression is None and self.single is not None:
            try:
                self.expression = _from_string("{% set _p_result = " + self.single + " %}")
            except TemplateSyntaxError as exc:
                raise _syntax_error(self.source, exc.message or str(exc)) from None
        return self.expression


@lru_cache(maxsize=1024)
def compile_template(source: str, keep_raw: bool = False) -> Compiled:
    """Translate and compile a template once; the cache is keyed by the template text."""
    try:
        translation = translate(source, REGISTRY, keep_raw)
    except ExpressionError as exc:
        raise _syntax_error(source, str(exc)) from None
    except RecursionError:
        raise _syntax_error(source, "the expression is nested too deeply") from None
    compiled = Compiled(source, static=translation.static, jinja=translation.source, single=translation.single,
                        single_line=translation.single_line)
    if translation.static is not None:
        return compiled
    try:
        compiled.template = _from_string(translation.source)
    except TemplateSyntaxError as exc:
        log.debug("Jinja rejected the translation of %r: %s\n%s", source, exc, translation.source)
        raise _syntax_error(source, exc.message or str(exc)) from None
    except RecursionError:
        raise _syntax_error(source, "the expression is nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - a translation Jinja cannot compile is still a template error
        log.warning("Unable to compile the translation of %r: %s\n%s", source, exc, translation.source)
        raise _syntax_error(source, f"{type(exc).__name__}: {exc}") from None
    return compiled


def _syntax_error(source: str, message: str) -> ExpressionError:
    error = ExpressionError(f"Unable to parse the expression `{source}`: {message}")
    error.located = True
    return error


def _template_line(traceback: TracebackType | None, template: Template | None) -> int:
    """The Pebble line of the innermost template frame (the translation keeps lines aligned)."""
    line = 1
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_filename == _TEMPLATE_FILENAME and template is not None:
            try:
                line = template.get_corresponding_lineno(traceback.tb_lineno)
            except Exception:  # noqa: BLE001 - best effort only
                pass
        traceback = traceback.tb_next
    return max(line, 1)


def _located(exc: BaseException, compiled: Compiled, template: Template | None) -> ExpressionError:
    if isinstance(exc, ExpressionError) and exc.located:
        return exc
    if template is not None and template is compiled.expression:
        line = compiled.single_line
    else:
        line = _template_line(exc.__traceback__, template)
    if isinstance(exc, MissingVariable):
        message = f"Unable to find `{exc.name}` used in the expression `{compiled.source}` at line {line}"
    elif isinstance(exc, ExpressionError):
        message = f"{exc} (in the expression `{compiled.source}` at line {line})"
    elif isinstance(exc, RecursionError):
        message = f"The expression `{compiled.source}` is nested too deeply"
    else:
        message = (f"Unable to render the expression `{compiled.source}` at line {line}: "
                   f"{type(exc).__name__}: {exc}")
    error = (type(exc) if isinstance(exc, ExpressionError) else ExpressionError)(message)
    error.located = True
    return error


def _begin(deadline: float | None = None) -> tuple[rt.RenderState, Any]:
    state = rt.STATE.get()
    if state is None:
        state = rt.RenderState(deadline)
        return state, rt.STATE.set(state)
    return state, None


def begin_render(deadline: float | None = None) -> Any:
    """Open the budget of a top-level render (nested renders share it); returns a token for ``end_render``."""
    return _begin(deadline)[1]


def end_render(token: Any) -> None:
    if token is not None:
        rt.STATE.reset(token)


def run_text(compiled: Compiled, variables: Mapping[str, Any]) -> str:
    if compiled.static is not None:
        return compiled.static
    template = compiled.template
    assert template is not None
    _, token = _begin()
    try:
        context = template.new_context(variables, shared=True)  # type: ignore[arg-type]
        parts: list[str] = []
        size = 0
        limit = rt.MAX_OUTPUT_CHARS
        check = rt.check_deadline
        for piece in template.root_render_func(context):
            size += len(piece)
            if size > limit:
                raise ExpressionError(f"Rendered value exceeds the maximum size of {limit} characters")
            parts.append(piece)
            if not len(parts) & 1023:
                check()
        return "".join(parts)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an ExpressionError
        raise _located(exc, compiled, template) from None
    finally:
        if token is not None:
            rt.STATE.reset(token)


def run_typed(compiled: Compiled, variables: Mapping[str, Any]) -> Any:
    template = compiled.typed_template()
    if template is None:
        return run_text(compiled, variables)
    _, token = _begin()
    try:
        context = template.new_context(variables, shared=True)  # type: ignore[arg-type]
        for _ in template.root_render_func(context):
            pass
        result = context.vars["_p_result"]
        if result.__class__ is PebbleUndefined:
            raise MissingVariable(missing_name(result))
        return _plain(result)
    except Exception as exc:  # noqa: BLE001
        raise _located(exc, compiled, template) from None
    finally:
        if token is not None:
            rt.STATE.reset(token)


def _plain(value: Any) -> Any:
    """Values that only exist inside templates, turned into plain data for the caller."""
    if isinstance(value, Markup):
        return str(value)
    if isinstance(value, str):
        if len(value) > rt.MAX_OUTPUT_CHARS:
            raise ExpressionError(f"Rendered value exceeds the maximum size of {rt.MAX_OUTPUT_CHARS} characters")
        return value
    if isinstance(value, Entry):
        return {"key": value.key, "value": value.value}
    return value


def render_text(source: str, variables: Mapping[str, Any], keep_raw: bool = False) -> str:
    return run_text(compile_template(source, keep_raw), variables)


def render_typed_text(source: str, variables: Mapping[str, Any]) -> Any:
    return run_typed(compile_template(source, False), variables)


# --- render() and renderOnce() ------------------------------------------------------------------

def render_function(template: Any, variables: Mapping[str, Any], recursive: bool) -> Any:
    """Kestra's ``render(x, recursive)``: render a value again, until it stops changing when recursive."""
    if template is None:
        raise ExpressionError("The 'render' function expects an argument 'template'.")
    state = rt.current_state()
    state.depth += 1
    try:
        if state.depth > rt.MAX_RENDER_DEPTH:
            raise ExpressionError("render() calls are nested too deeply")
        return _render_again(template, variables, recursive)
    finally:
        state.depth -= 1


def _render_again(value: Any, variables: Mapping[str, Any], recursive: bool) -> Any:
    if isinstance(value, str):
        text = value
        for _ in range(rt.MAX_RENDERING_AMOUNT + 1):
            if "{" not in text:
                break
            rendered = render_text(text, variables, keep_raw=True)
            if not recursive or rendered == text:
                text = rendered
                break
            text = rendered
        else:
            raise ExpressionError("Too many rendering attempts")
        return _RAW_BLOCK.sub(lambda m: m.group(1), text)
    if isinstance(value, Mapping):
        return {(_render_again(k, variables, recursive) if isinstance(k, str) else k):
                _render_again(v, variables, recursive) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_render_again(v, variables, recursive) for v in value]
    return value
