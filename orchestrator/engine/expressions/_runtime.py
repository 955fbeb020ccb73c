"""Pebble operator semantics and the safety limits of one render.

Each helper here implements one Pebble operator the way Pebble's ``OperatorUtils`` and Kestra's
overrides do (integer division truncating toward zero, ``+`` concatenating as soon as one side is a
string, comparisons only between numbers or between strings, Java truthiness), so that an expression
gives the same result as in Kestra rather than Python's answer.
"""
from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Set
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, localcontext
from functools import lru_cache
from itertools import islice
from typing import Any, Callable

from jinja2.runtime import LoopContext
from jinja2.utils import Namespace, missing

from ._errors import ExpressionError, ExpressionTimeout, MissingVariable
from ._values import Entry, PebbleUndefined, is_number, java_str, missing_name

# --- limits -------------------------------------------------------------------------------------

#: Maximum length (characters) of a rendered string or of any string built while rendering.
MAX_OUTPUT_CHARS = 10 * 1024 * 1024
#: Maximum number of loop iterations over a whole render (nested loops add up).
MAX_LOOP_ITERATIONS = 1_000_000
#: Maximum number of elements produced by ``range()`` / ``..`` or held by a collection built in an expression.
MAX_COLLECTION_SIZE = 1_000_000
#: Maximum nesting of ``render()`` calls inside one render.
MAX_RENDER_DEPTH = 20
#: Passes of ``render(x)`` before giving up (Kestra's MAX_RENDERING_AMOUNT).
MAX_RENDERING_AMOUNT = 100
#: Seconds one top-level render may run (the worker also caps it by the task's timeout); 0 = no budget.
TIME_BUDGET = 5.0


class RenderState:
    """Budget shared by one top-level render and the ``render()`` calls nested in it."""

    __slots__ = ("iterations", "depth", "deadline", "budget")

    def __init__(self, deadline: float | None = None) -> None:
        self.iterations = 0
        self.depth = 0
        now = time.monotonic()
        own = now + TIME_BUDGET if TIME_BUDGET > 0 else None
        if deadline is not None and (own is None or deadline < own):
            own = deadline
        self.deadline = own
        self.budget = None if own is None else max(own - now, 0.0)


STATE: ContextVar[RenderState | None] = ContextVar("celestra_expression_state", default=None)


def current_state() -> RenderState:
    state = STATE.get()
    if state is None:  # direct call outside a render (constant folding, unit use)
        state = RenderState()
    return state


def check_deadline() -> None:
    """Fail the render once it has run past its deadline (called at loops, calls and filters)."""
    state = STATE.get()
    if state is not None and state.deadline is not None and time.monotonic() > state.deadline:
        raise_timeout(state)


def raise_timeout(state: RenderState) -> None:
    raise ExpressionTimeout(f"The expression ran past its time budget of {budget_text(state.budget)}")


def budget_text(seconds: float | None) -> str:
    if seconds is None:
        return "(none)"
    return f"{seconds:g} s" if seconds >= 1 else f"{round(seconds * 1000)} ms"


def budget_of_render(fallback: float) -> str:
    """The budget of the current render as text (``fallback`` seconds outside a render)."""
    state = STATE.get()
    return budget_text(state.budget if state is not None and state.budget is not None else fallback)


def remaining_budget() -> float:
    """Seconds left to the current render (regex and jq calls are given this as their timeout)."""
    state = STATE.get()
    if state is None:
        state = RenderState()
    if state.deadline is None:
        return 3600.0
    remaining = state.deadline - time.monotonic()
    if remaining <= 0:
        raise_timeout(state)
    return remaining


def check_size(text: str) -> str:
    if len(text) > MAX_OUTPUT_CHARS:
        raise ExpressionError(f"Rendered value exceeds the maximum size of {MAX_OUTPUT_CHARS} characters")
    return text


def check_collection(items: Any) -> Any:
    if len(items) > MAX_COLLECTION_SIZE:
        raise ExpressionError(f"Collection exceeds the maximum size of {MAX_COLLECTION_SIZE} elements")
    return items


# --- strictness ---------------------------------------------------------------------------------

def strict(value: Any, name: str | None = None) -> Any:
    """A context name read outside ``??``/``defined``/``default``: missing means an error."""
    if value.__class__ is PebbleUndefined:
        raise MissingVariable(name or missing_name(value))
    return value


def strict_not_null(value: Any) -> Any:
    """``x ?? raise``: the left side must exist and not be null."""
    if value.__class__ is PebbleUndefined:
        raise MissingVariable(missing_name(value))
    if value is None:
        raise ExpressionError("The expression evaluated to null and `?? raise` forbids it")
    return value


def context_lookup(context: Any, _: Any, name: str) -> Any:
    """A context variable whose name Jinja cannot express (``if``, ``True``, non-identifiers)."""
    if name.startswith("__") or name.startswith("_p_"):
        raise MissingVariable(name)  # platform services and translation internals stay hidden
    value = context.resolve_or_missing(name)
    if value is missing or value.__class__ is PebbleUndefined:
        raise MissingVariable(name)
    return value


def context_lookup_soft(context: Any, _: Any, name: str) -> Any:
    """Like ``context_lookup`` but a missing name stays a lazy undefined (a ``set`` fallback)."""
    try:
        return context_lookup(context, _, name)
    except MissingVariable:
        return PebbleUndefined(name=name)


def namespace_get(namespace: Namespace, name: str, fallback: Any) -> Any:
    """A variable assigned by ``{% set %}``, falling back to the context before the first assignment."""
    attrs = object.__getattribute__(namespace, "_Namespace__attrs")
    if name in attrs:
        return attrs[name]
    return strict(fallback, name)


def new_namespace(_: Any = None) -> Namespace:
    return Namespace()


# --- attribute access ---------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_LOOP_ATTRIBUTES = {"index": "index0", "revindex": "revindex0", "first": "first", "last": "last",
                    "length": "length"}


@lru_cache(maxsize=64)
def _parse_small_json_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _parse_json_text(text: str) -> Any:
    """JSON text read with ``.``/``[]`` (``taskrun.value.key``); small texts are cached across accesses."""
    if len(text) <= 65536:
        return _parse_small_json_text(text)
    try:
        return json.loads(text)
    except ValueError:
        return None


def pebble_get(obj: Any, key: Any) -> Any:
    """``a.b`` / ``a['b']`` / ``a[0]``: map entries and list items only, like Pebble in strict mode."""
    cls = obj.__class__
    if cls is dict:
        try:
            return obj[key]
        except KeyError:
            raise MissingVariable(java_str(key)) from None
        except TypeError:
            raise MissingVariable(java_str(key)) from None
    if key.__class__ is PebbleUndefined:
        raise MissingVariable(missing_name(key))
    if cls is list or cls is tuple:
        return _list_item(obj, key)
    if obj is None:
        raise MissingVariable(java_str(key))
    if cls is PebbleUndefined:
        raise MissingVariable(missing_name(obj))
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except (KeyError, TypeError):
            raise MissingVariable(java_str(key)) from None
    if isinstance(obj, (list, tuple)):
        return _list_item(obj, key)
    if cls is Entry:
        if key == "key":
            return obj.key
        if key == "value":
            return obj.value
        raise MissingVariable(java_str(key))
    if cls is LoopContext:
        attribute = _LOOP_ATTRIBUTES.get(key) if isinstance(key, str) else None
        if attribute is None:
            raise MissingVariable(java_str(key))
        return getattr(obj, attribute)
    if isinstance(obj, str):
        stripped = obj.strip()
        if stripped[:1] in ("{", "["):
            parsed = _parse_json_text(stripped)
            if isinstance(parsed, (dict, list)):
                return pebble_get(parsed, key)
    raise MissingVariable(java_str(key))


def _list_item(obj: Any, key: Any) -> Any:
    if isinstance(key, int) and not isinstance(key, bool):
        index = key
    elif isinstance(key, str) and _INT.fullmatch(key):
        index = int(key)
    else:
        raise MissingVariable(java_str(key))
    if 0 <= index < len(obj):
        return obj[index]
    raise MissingVariable(java_str(key))


# --- truthiness ---------------------------------------------------------------------------------

def _boolean(value: Any) -> bool | None:
    """Pebble's ``compatibleCast(value, Boolean)``; None when the value is not convertible."""
    if value is True or value is False:
        return value
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (int, float, Decimal)):
        return not (value != value) and value != 0
    return None


def to_bool(value: Any) -> bool:
    """Operands of ``and``/``or``/``not``: null or a collection is an error in strict mode."""
    if value is None:
        raise ExpressionError("null value used in a boolean expression and strict variables is set to true")
    result = _boolean(value)
    if result is None:
        strict(value)
        raise ExpressionError(f"Wrong operand type {_type_name(value)} in a boolean expression")
    return result


def ternary_bool(value: Any) -> bool:
    """The condition of ``a ? b : c``: null is false."""
    if value is None:
        return False
    return to_bool(value)


def if_bool(value: Any) -> bool:
    """The condition of ``{% if %}``: Boolean, Number or String only; null is an error (strict mode)."""
    if value is True or value is False:
        return value
    if value is None:
        raise ExpressionError("null value given to if statement and strict variables is set to true")
    result = _boolean(value)
    if result is None:
        strict(value)
        raise ExpressionError(f"Unsupported value type {_type_name(value)}. Expected Boolean, String, Number "
                              "in \"if\" statement")
    return result


def not_null(value: Any) -> bool:
    return value is not None


def _type_name(value: Any) -> str:
    from ._values import class_name

    return (class_name(value) or "null").rsplit(".", 1)[-1]


# --- iteration ----------------------------------------------------------------------------------

def iterate(value: Any) -> Any:
    """The iterable of ``{% for %}``: null gives no iteration, a map gives entries with key/value."""
    if value is None:
        return ()
    cls = value.__class__
    if cls is list or cls is tuple:
        items = value
    elif isinstance(value, Mapping):
        items = [Entry(k, v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, (Set, range)):
        items = list(islice(value, MAX_LOOP_ITERATIONS + 1))
    elif isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        strict(value)
        raise ExpressionError(f"Not an iterable object. Value = [{java_str(value)}]")
    else:
        items = list(islice(value, MAX_LOOP_ITERATIONS + 1))
    state = current_state()
    if state.deadline is not None and time.monotonic() > state.deadline:
        raise_timeout(state)
    state.iterations += len(items)
    if state.iterations > MAX_LOOP_ITERATIONS:
        raise ExpressionError(f"Loops exceed the maximum of {MAX_LOOP_ITERATIONS} iterations in one render")
    return items


# --- comparisons --------------------------------------------------------------------------------

def equals(left: Any, right: Any) -> bool:
    """``==``: numbers by value (``1 == 1.0``), otherwise Java ``equals`` (a Boolean never equals a Number)."""
    if left is right:
        return True
    lcls, rcls = left.__class__, right.__class__
    if lcls is rcls and (lcls is str or lcls is int):
        return left == right
    if lcls is bool or rcls is bool:
        return lcls is rcls and left == right
    if left is None or right is None:
        return False
    if is_number(left) and is_number(right):
        return _numeric_compare(left, right) == 0
    if lcls is PebbleUndefined or rcls is PebbleUndefined:
        strict(left)
        strict(right)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(equals(a, b) for a, b in zip(left, right))
    return bool(left == right)


def not_equals(left: Any, right: Any) -> bool:
    return not equals(left, right)


def _numeric_compare(left: Any, right: Any) -> int:
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        if isinstance(left, float) and not math.isfinite(left) or isinstance(right, float) and not math.isfinite(right):
            left, right = float(left), float(right)
        else:
            left, right = Decimal(repr(left)) if isinstance(left, float) else Decimal(left), \
                Decimal(repr(right)) if isinstance(right, float) else Decimal(right)
    if left != left or right != right:
        return 2  # NaN is unordered
    return (left > right) - (left < right)


_COMPARISON_NAMES = {"<": "less than", ">": "greater than", "<=": "less than or equal",
                     ">=": "greater than or equal"}


def _compare(left: Any, right: Any, operator: str) -> int | None:
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        result = _numeric_compare(left, right)
        return None if result == 2 else result
    if isinstance(left, datetime) and isinstance(right, datetime) or (
            isinstance(left, date) and isinstance(right, date)
            and not isinstance(left, datetime) and not isinstance(right, datetime)):
        try:
            return (left > right) - (left < right)
        except TypeError:
            pass
    strict(left)
    strict(right)
    raise ExpressionError(f"Could not perform {_COMPARISON_NAMES[operator]} comparison between "
                          f"{_type_name(left)} and {_type_name(right)}")


def less(left: Any, right: Any) -> bool:
    result = _compare(left, right, "<")
    return result is not None and result < 0


def greater(left: Any, right: Any) -> bool:
    result = _compare(left, right, ">")
    return result is not None and result > 0


def less_equal(left: Any, right: Any) -> bool:
    result = _compare(left, right, "<=")
    return result is not None and result <= 0


def greater_equal(left: Any, right: Any) -> bool:
    result = _compare(left, right, ">=")
    return result is not None and result >= 0


# --- arithmetic ---------------------------------------------------------------------------------

_OPERATION_NAMES = {"+": "ADD", "-": "SUBTRACT", "*": "MULTIPLICATION", "/": "DIVISION", "%": "MODULUS"}


def _arithmetic(left: Any, right: Any, operator: str) -> Any:
    if not (is_number(left) and is_number(right)):
        strict(left)
        strict(right)
        raise ExpressionError(f"invalid operands for mathematical operation [{_OPERATION_NAMES[operator]}]: "
                              f"{_type_name(left)} {operator} {_type_name(right)}")
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return _decimal_operation(Decimal(repr(left)) if isinstance(left, float) else Decimal(left),
                                  Decimal(repr(right)) if isinstance(right, float) else Decimal(right), operator)
    if isinstance(left, float) or isinstance(right, float):
        return _float_operation(float(left), float(right), operator)
    if operator == "+":
        return _long(left + right)
    if operator == "-":
        return _long(left - right)
    if operator == "*":
        if left.bit_length() + right.bit_length() > 128:  # squaring in a loop would never end
            left, right = _long(left), _long(right)
        return _long(left * right)
    if right == 0:
        raise ExpressionError("/ by zero")
    quotient = abs(left) // abs(right)
    if (left < 0) != (right < 0):
        quotient = -quotient
    if operator == "/":
        return quotient
    return left - right * quotient


def _long(value: int) -> int:
    """Java ``long`` arithmetic: Pebble's integer operations wrap around at 64 bits."""
    if -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        return value
    return (value + 0x8000000000000000) % 0x10000000000000000 - 0x8000000000000000


def _float_operation(left: float, right: float, operator: str) -> float:
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if operator == "/":
        if right == 0:
            if left == 0 or left != left:
                return math.nan
            return math.copysign(math.inf, left) * math.copysign(1.0, right)
        return left / right
    if right == 0 or math.isinf(left):
        return math.nan
    return math.fmod(left, right)


def _decimal_operation(left: Decimal, right: Decimal, operator: str) -> Decimal:
    with localcontext() as context:
        context.prec = 34  # MathContext.DECIMAL128
        if operator == "+":
            return left + right
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        if right == 0:
            raise ExpressionError("Division by zero")
        if operator == "/":
            return left / right
        return left % right


def add(left: Any, right: Any) -> Any:
    """``+``: string concatenation when either side is a string, list append, else arithmetic."""
    if isinstance(left, str) or isinstance(right, str):
        return check_size(java_str(left) + java_str(right))
    if isinstance(left, (list, tuple)):
        items = list(left)
        if isinstance(right, (list, tuple, Set)):
            items.extend(right)
        else:
            items.append(right)
        return check_collection(items)
    return _arithmetic(left, right, "+")


def subtract(left: Any, right: Any) -> Any:
    if isinstance(left, (list, tuple)):
        items = list(left)
        if isinstance(right, (list, tuple, Set)):
            return [item for item in items if not any(equals(item, other) for other in right)]
        for index, item in enumerate(items):
            if equals(item, right):
                del items[index]
                break
        return items
    return _arithmetic(left, right, "-")


def multiply(left: Any, right: Any) -> Any:
    return _arithmetic(left, right, "*")


def divide(left: Any, right: Any) -> Any:
    return _arithmetic(left, right, "/")


def modulo(left: Any, right: Any) -> Any:
    return _arithmetic(left, right, "%")


def negate(value: Any) -> Any:
    return _arithmetic(-1, value, "*")


def positive(value: Any) -> Any:
    return _arithmetic(1, value, "*")


def concat(left: Any, right: Any) -> str:
    """``~``: null is skipped, anything else uses Java's ``toString``."""
    text = ("" if left is None else java_str(left)) + ("" if right is None else java_str(right))
    return check_size(text)


def interpolate(_: Any, *parts: Any) -> str:
    """``"a #{b} c"``: the same rules as ``~``."""
    return check_size("".join("" if part is None else java_str(part) for part in parts))


def make_range(start: Any, end: Any, increment: Any = 1) -> list[Any]:
    """Pebble's ``range``/``..``: end inclusive, numbers or single characters, bounded in size."""
    if increment is None:
        increment = 1
    if not is_number(increment):
        raise ExpressionError(f"The increment of the range function must be a number {java_str(increment)}")
    step = int(increment)
    if step == 0:
        raise ExpressionError("The increment of the range function must be different than 0")
    if is_number(start) and is_number(end):
        first, last = int(start), int(end)
        size = abs(last - first) // abs(step) + 1
        if size > MAX_COLLECTION_SIZE:
            raise ExpressionError(f"The range function cannot produce more than {MAX_COLLECTION_SIZE} elements, "
                                  f"but this call would produce {size}.")
        return list(range(first, last + (1 if step > 0 else -1), step))
    if isinstance(start, str) and isinstance(end, str):
        if len(start) != 1 or len(end) != 1:
            raise ExpressionError("Arguments of range function must be of type Number or String with a length of 1")
        first, last = ord(start), ord(end)
        return [chr(code) for code in range(first, last + (1 if step > 0 else -1), step)]
    strict(start)
    strict(end)
    raise ExpressionError("Arguments of range function must be of type Number or String with a length of 1")


def contains(left: Any, right: Any) -> bool:
    """``contains``: list element (or all elements of a list), map key, or substring."""
    if left is None:
        return False
    if isinstance(left, (list, tuple, Set)):
        if isinstance(right, (list, tuple, Set)):
            return all(any(equals(item, other) for item in left) for other in right)
        return any(equals(item, right) for item in left)
    if isinstance(left, Mapping):
        try:
            return right in left
        except TypeError:
            return False
    if isinstance(left, str):
        return java_str(right) in left
    strict(left)
    raise ExpressionError("Contains operator can only be used on Collections, Maps and arrays. "
                          f"Actual type was: {_type_name(left)}")


def is_in(left: Any, right: Any) -> bool:
    """``a in b`` (newer Kestra): compares the text of ``a`` with the items, or the keys and values of a map."""
    if left is None or right is None:
        return False
    needle = java_str(left)
    if isinstance(right, Mapping):
        return any(java_str(k) == needle or java_str(v) == needle for k, v in right.items())
    if isinstance(right, (list, tuple, Set)):
        return any(java_str(item) == needle for item in right)
    return False


def not_in(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    return not is_in(left, right)


# --- lazy operands (the code generator passes thunks) ---------------------------------------------

def null_coalesce(left: Callable[[], Any], right: Callable[[], Any]) -> Any:
    """``a ?? b``: b when evaluating a hits a missing variable, or a is null."""
    try:
        value = left()
    except MissingVariable:
        return right()
    return right() if value is None or value.__class__ is PebbleUndefined else value


def undefined_coalesce(left: Callable[[], Any], right: Callable[[], Any]) -> Any:
    """``a ??? b``: b only when a is undefined (a defined null stays null)."""
    try:
        value = left()
    except MissingVariable:
        return right()
    return right() if value.__class__ is PebbleUndefined else value


def defined(value: Callable[[], Any]) -> bool:
    """``is defined``: Pebble's DefinedTest is ``value != null`` with missing variables counting as null."""
    try:
        result = value()
    except MissingVariable:
        return False
    return result is not None and result.__class__ is not PebbleUndefined


def default(value: Callable[[], Any], fallback: Any) -> Any:
    """``| default(x)``: x when the value is missing, null, blank or an empty collection."""
    try:
        result = value()
    except MissingVariable:
        return fallback
    return fallback if is_empty(result) else result


def is_empty(value: Any) -> bool:
    if value is None or value.__class__ is PebbleUndefined:
        return True
    if isinstance(value, str):
        return value.strip(" \t\n\x0b\f\r") == "" if value else True
    if isinstance(value, (list, tuple, Set, Mapping)):
        return len(value) == 0
    return False


# Eager versions used when Jinja folds constant operands at compile time.
def null_coalesce_value(left: Any, right: Any = None) -> Any:
    return right if left is None or left.__class__ is PebbleUndefined else left


def undefined_coalesce_value(left: Any, right: Any = None) -> Any:
    return right if left.__class__ is PebbleUndefined else left


def defined_value(value: Any) -> bool:
    return value is not None and value.__class__ is not PebbleUndefined


def default_value(value: Any, fallback: Any = None) -> Any:
    return fallback if is_empty(value) else value
