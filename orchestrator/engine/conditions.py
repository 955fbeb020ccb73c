"""Evaluation of Kestra trigger conditions (spec §7.2, §7.4), pure.

A condition is evaluated against a :class:`ConditionContext`: the execution under test (the upstream
execution of a Flow trigger, as Kestra JSON), the flow owning the trigger, the expression variables
(``trigger.date`` for schedules, the upstream execution's context for Flow triggers) and the clock.

Nothing here touches the database: ``MultipleCondition`` and ``preconditions`` keep their state in a
*window* persisted by the runtime (``orchestrator.runtime.flow_triggers``). This module gives the
pieces to do so: the named sub-conditions (:func:`named_conditions`), the window bounds of a time
window (:func:`window_bounds`), which sub-conditions an execution satisfies (:func:`satisfied`), and
:func:`evaluate` reads an already stored window through ``ConditionContext.windows`` when it meets a
``MultipleCondition`` in a list of conditions.

:func:`evaluate` calls the condition's class (``Plugin.test``, in ``orchestrator.plugins.core.condition``)
through the registry; the readers and date helpers below are what those tests share.

Errors (an unparsable date, an expression that does not render, a condition with nothing to test)
raise :class:`ConditionError`; callers log them and treat the condition as false, as Kestra's
``ConditionService`` does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from .errors import CelestraError
from .plugins import CONDITION, Plugin, UnknownPluginType, lookup, registered_types
from .timeutil import now as utcnow
from .timeutil import parse_duration
from .text import scalar_text

__all__ = [
    "ConditionContext", "ConditionError", "evaluate", "all_valid", "is_multiple",
    "named_conditions", "preconditions_conditions", "satisfied", "window_bounds", "window_is_valid",
    "upstream_flow_matches", "filter_matches", "parse_datetime", "parse_offset_time", "is_public_holiday",
    "condition_date", "execution_labels", "execution_state", "nth_weekday", "seconds_utc", "state_list",
    "wanted_labels", "DAYS",
]

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_TRIGGER_DATE = "{{ trigger.date }}"


class ConditionError(CelestraError):
    """A condition could not be evaluated (Kestra's IllegalConditionEvaluation / render errors)."""


def _default_render(value: Any, variables: Mapping[str, Any]) -> Any:
    from . import expressions

    return expressions.render(value, variables)


def _default_truthy(value: Any) -> bool:
    from . import expressions

    return bool(expressions.is_truthy(value))


@dataclass
class ConditionContext:
    """What a condition sees.

    ``execution`` is the Kestra JSON of the execution under test (None for schedule conditions);
    ``flow`` is ``{"namespace", "id"}`` of the flow owning the trigger; ``variables`` the expression
    context; ``windows`` maps a MultipleCondition id to the results stored in its current window.
    """

    execution: Mapping[str, Any] | None = None
    flow: Mapping[str, Any] | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)
    render: Callable[[Any, Mapping[str, Any]], Any] = _default_render
    is_truthy: Callable[[Any], bool] = _default_truthy
    windows: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)

    def rendered(self, value: Any) -> Any:
        try:
            return self.render(value, self.variables)
        except CelestraError as exc:
            raise ConditionError(str(exc)) from exc
        except Exception as exc:
            raise ConditionError(f"{type(exc).__name__}: {exc}") from exc

    def require_execution(self) -> Mapping[str, Any]:
        if self.execution is None:
            raise ConditionError("Invalid condition with null execution")
        return self.execution


# --------------------------------------------------------------------------------------------------
# Small readers of the execution JSON

def execution_state(execution: Mapping[str, Any]) -> str | None:
    state = execution.get("state")
    return state.get("current") if isinstance(state, Mapping) else state


def execution_labels(execution: Mapping[str, Any]) -> list[tuple[str, str]]:
    labels = execution.get("labels") or []
    if isinstance(labels, Mapping):
        return [(str(k), str(v)) for k, v in labels.items()]
    return [(str(item.get("key")), str(item.get("value"))) for item in labels if isinstance(item, Mapping)]


def wanted_labels(value: Any) -> list[tuple[str, str]]:
    """A labels property: a map or a list of ``{key, value}``; values compared as text."""
    if isinstance(value, Mapping):
        return [(str(k), scalar_text(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(item.get("key")), scalar_text(item.get("value"))) for item in value if isinstance(item, Mapping)]
    raise ConditionError("labels must be a map or a list of {key, value}")


def state_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# --------------------------------------------------------------------------------------------------
# Dates

_BRACKET_ZONE = re.compile(r"^(?P<body>.+?)\[(?P<zone>[^\]]+)\]$")


def parse_datetime(value: Any, zone: str | None = None) -> datetime:
    """Kestra's ``DateUtils.parseZonedDateTime``: ISO date-times with an offset, a ``Z``, an optional
    ``[Zone/Id]`` suffix; a bare date is the start of that day; a naive value is in ``zone`` (UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, Date):
        moment = datetime.combine(value, time())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        match = _BRACKET_ZONE.match(text)
        bracket = None
        if match:
            text, bracket = match.group("body"), match.group("zone")
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConditionError(f"Unable to parse date '{value}'") from None
        if bracket:
            try:
                moment = moment.astimezone(ZoneInfo(bracket)) if moment.tzinfo else moment.replace(
                    tzinfo=ZoneInfo(bracket))
            except Exception:  # noqa: BLE001 - unknown zone ids
                raise ConditionError(f"Unknown time zone '{bracket}' in '{value}'") from None
    else:
        raise ConditionError(f"Unable to parse date '{value}'")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else timezone.utc)
    return moment


def parse_offset_time(value: Any) -> tuple[time, timedelta]:
    """An ISO OffsetTime (``09:00:00+01:00``, ``09:00Z``; no offset means UTC): (time, offset)."""
    if isinstance(value, time):
        offset = value.utcoffset() or timedelta(0)
        return value.replace(tzinfo=None), offset
    if not isinstance(value, str) or not value.strip():
        raise ConditionError(f"Unable to parse time '{value}'")
    try:
        parsed = time.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConditionError(f"Unable to parse time '{value}'") from None
    return parsed.replace(tzinfo=None), parsed.utcoffset() or timedelta(0)


def seconds_utc(moment_time: time, offset: timedelta) -> float:
    """Seconds since midnight UTC of an OffsetTime, modulo one day (Java compares OffsetTimes so)."""
    local = moment_time.hour * 3600 + moment_time.minute * 60 + moment_time.second + moment_time.microsecond / 1e6
    return (local - offset.total_seconds()) % 86400


def condition_date(condition_props: Mapping[str, Any], ctx: ConditionContext) -> datetime:
    template = condition_props.get("date") or _TRIGGER_DATE
    rendered = ctx.rendered(template)
    if rendered is None or rendered == "":
        raise ConditionError(f"Unable to render the date '{template}'")
    return parse_datetime(rendered)


# --------------------------------------------------------------------------------------------------
# Public holidays: a basic built-in calendar, or the `holidays` package when it is installed

def _easter(year: int) -> Date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = ((h + l - 7 * m + 114) % 31) + 1
    return Date(year, month, day)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> Date:
    """The n-th (1-based; -1 = last) given weekday (0 = Monday) of a month."""
    if n > 0:
        first = Date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    following = Date(year + (month == 12), month % 12 + 1, 1)
    last = following - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _basic_holidays(country: str, year: int) -> set[Date]:
    easter = _easter(year)
    fixed = {(1, 1), (12, 25)}
    moving: set[Date] = set()
    if country == "FR":
        fixed |= {(5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11)}
        moving |= {easter + timedelta(days=1), easter + timedelta(days=39), easter + timedelta(days=50)}
    elif country == "DE":
        fixed |= {(5, 1), (10, 3), (12, 26)}
        moving |= {easter - timedelta(days=2), easter + timedelta(days=1), easter + timedelta(days=39),
                   easter + timedelta(days=50)}
    elif country in ("GB", "UK"):
        fixed |= {(12, 26)}
        moving |= {easter - timedelta(days=2), easter + timedelta(days=1), nth_weekday(year, 5, 0, 1),
                   nth_weekday(year, 5, 0, -1), nth_weekday(year, 8, 0, -1)}
    elif country == "US":
        fixed |= {(6, 19), (7, 4), (11, 11)}
        moving |= {nth_weekday(year, 1, 0, 3), nth_weekday(year, 2, 0, 3), nth_weekday(year, 5, 0, -1),
                   nth_weekday(year, 9, 0, 1), nth_weekday(year, 10, 0, 2), nth_weekday(year, 11, 3, 4)}
    elif country == "BE":
        fixed |= {(5, 1), (7, 21), (8, 15), (11, 1), (11, 11)}
        moving |= {easter + timedelta(days=1), easter + timedelta(days=39), easter + timedelta(days=50)}
    elif country == "NL":
        fixed |= {(4, 27), (12, 26)}
        moving |= {easter, easter + timedelta(days=1), easter + timedelta(days=39), easter + timedelta(days=49),
                   easter + timedelta(days=50)}
    elif country == "IT":
        fixed |= {(1, 6), (4, 25), (5, 1), (6, 2), (8, 15), (11, 1), (12, 8), (12, 26)}
        moving |= {easter, easter + timedelta(days=1)}
    elif country == "ES":
        fixed |= {(1, 6), (5, 1), (8, 15), (10, 12), (11, 1), (12, 6), (12, 8)}
        moving |= {easter - timedelta(days=2)}
    elif country == "CH":
        fixed |= {(8, 1), (12, 26)}
        moving |= {easter - timedelta(days=2), easter + timedelta(days=1), easter + timedelta(days=39),
                   easter + timedelta(days=50)}
    return {Date(year, month, day) for month, day in fixed} | moving


def is_public_holiday(day: Date, country: str | None, sub_division: str | None = None) -> bool:
    """True when ``day`` is a public holiday of ``country`` (ISO code; none = the generic calendar).

    Uses the ``holidays`` package when installed; otherwise a basic calendar of national holidays for
    FR, DE, GB, US, BE, NL, IT, ES, CH (other countries: New Year's Day and Christmas only).
    """
    code = (country or "").upper()
    try:
        import holidays
    except ImportError:
        holidays = None
    if holidays is not None and code:
        try:
            calendar = holidays.country_holidays(code, subdiv=sub_division or None, years=day.year)
            return day in calendar
        except Exception:  # noqa: BLE001 - unknown country or subdivision: use the basic calendar
            pass
    return day in _basic_holidays(code, day.year)


# --------------------------------------------------------------------------------------------------
# Evaluation

def is_multiple(condition: Any) -> bool:
    """A condition evaluated over a window of executions (MultipleCondition): its class says so."""
    plugin = getattr(condition, "plugin", None)
    return bool(getattr(plugin, "windowed", False))


def __getattr__(name: str) -> Any:
    # ``MULTIPLE`` (the MultipleCondition type name) is read from its class, through the registry
    if name == "MULTIPLE":
        return next(cls.type for cls in registered_types().values() if getattr(cls, "windowed", False))
    raise AttributeError(name)


def all_valid(conditions: Iterable[Any], ctx: ConditionContext, *, skip_multiple: bool = False) -> bool:
    """All conditions true (AND); ``skip_multiple`` leaves MultipleConditions out (evaluated apart)."""
    for condition in conditions:
        if skip_multiple and is_multiple(condition):
            continue
        if not evaluate(condition, ctx):
            return False
    return True


def evaluate(condition: Any, ctx: ConditionContext) -> bool:
    """Evaluate one parsed condition (``orchestrator.engine.flow.Condition``): its class's ``test``."""
    try:
        plugin = lookup(condition.type)
    except UnknownPluginType:
        raise ConditionError(f"Unsupported condition type {condition.type}") from None
    if plugin.kind != CONDITION or plugin.test.__func__ is Plugin.test.__func__:  # type: ignore[attr-defined]
        raise ConditionError(f"Unsupported condition type {condition.type}")
    return bool(plugin.test(condition.props, ctx))


# --------------------------------------------------------------------------------------------------
# MultipleCondition and preconditions: named sub-conditions and time windows

Check = Callable[[ConditionContext], bool]


def upstream_flow_matches(entry: Mapping[str, Any], execution: Mapping[str, Any]) -> bool:
    """A ``preconditions.flows`` entry: namespace, optional flowId, states and labels of the upstream."""
    if entry.get("namespace") is not None and execution.get("namespace") != entry.get("namespace"):
        return False
    if entry.get("flowId") is not None and execution.get("flowId") != entry.get("flowId"):
        return False
    states = entry.get("states")
    if states is not None and execution_state(execution) not in states:
        return False
    labels = entry.get("labels")
    if labels:
        present = set(execution_labels(execution))
        return all(label in present for label in wanted_labels(labels))
    return True


def _filter_value(field_name: str, spec: Mapping[str, Any], ctx: ConditionContext) -> Any:
    execution = ctx.require_execution()
    if field_name == "FLOW_ID":
        return execution.get("flowId")
    if field_name == "NAMESPACE":
        return execution.get("namespace")
    if field_name == "STATE":
        return execution_state(execution)
    if field_name == "EXPRESSION":
        value = ctx.rendered(spec.get("value"))
        return None if value is None else scalar_text(value) if not isinstance(value, str) else value
    raise ConditionError(f"Unknown filter field '{field_name}'")


def _filter_one(spec: Mapping[str, Any], ctx: ConditionContext) -> bool:
    field_name = str(spec.get("field"))
    kind = str(spec.get("type"))
    actual = _filter_value(field_name, spec, ctx)
    expected = spec.get("value")
    expected_text = None if expected is None else scalar_text(expected)
    values = [scalar_text(v) for v in spec.get("values") or []]
    if kind == "EQUAL_TO":
        return bool(expected_text == actual)
    if kind == "NOT_EQUAL_TO":
        return bool(expected_text != actual)
    if kind == "IN":
        return actual in values
    if kind == "NOT_IN":
        return actual not in values
    if kind == "IS_TRUE":
        return ctx.is_truthy(actual)
    if kind == "IS_FALSE":
        return not ctx.is_truthy(actual)
    if kind == "IS_NULL":
        return actual is None
    if kind == "IS_NOT_NULL":
        return actual is not None
    if actual is None:
        return False
    if kind == "STARTS_WITH":
        return str(actual).startswith(expected_text or "")
    if kind == "ENDS_WITH":
        return str(actual).endswith(expected_text or "")
    if kind == "REGEX":
        try:
            return re.fullmatch(expected_text or "", actual) is not None
        except re.error as exc:
            raise ConditionError(f"Invalid regex '{expected_text}': {exc}") from None
    if kind == "CONTAINS":
        return (expected_text or "") in actual
    raise ConditionError(f"Unknown filter type '{kind}'")


def filter_matches(where: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """A ``preconditions.where`` entry: its filters joined by ``operand`` (AND by default)."""
    filters = where.get("filters") or []
    if str(where.get("operand") or "AND").upper() == "OR":
        return any(_filter_one(spec, ctx) for spec in filters)
    return all(_filter_one(spec, ctx) for spec in filters)


def preconditions_conditions(preconditions: Mapping[str, Any]) -> dict[str, Check]:
    """The named conditions of a Flow trigger's ``preconditions``, named as Kestra names them:
    ``condition_<n>`` per ``flows`` entry, then ``condition_<n>_<where id>`` per ``where`` entry."""
    checks: dict[str, Check] = {}
    number = 0
    for entry in preconditions.get("flows") or []:
        number += 1
        checks[f"condition_{number}"] = (lambda e: lambda ctx: upstream_flow_matches(e, ctx.require_execution()))(entry)
    for where in preconditions.get("where") or []:
        number += 1
        checks[f"condition_{number}_{where.get('id')}"] = (lambda w: lambda ctx: filter_matches(w, ctx))(where)
    return checks


def named_conditions(multiple: Any) -> dict[str, Check]:
    """The named sub-conditions of a MultipleCondition (a parsed Condition) or of ``preconditions`` (a map)."""
    if isinstance(multiple, Mapping):
        return preconditions_conditions(multiple)
    return {name: (lambda c: lambda ctx: evaluate(c, ctx))(nested)
            for name, nested in (multiple.props.get("conditions") or {}).items()}


def satisfied(checks: Mapping[str, Check], ctx: ConditionContext,
              on_error: Callable[[str, Exception], None] | None = None) -> dict[str, bool]:
    """The names of the sub-conditions the execution satisfies (only the true ones, as Kestra stores)."""
    out: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            if check(ctx):
                out[name] = True
        except ConditionError as exc:
            if on_error is not None:
                on_error(name, exc)
    return out


def _duration(value: Any, default: timedelta | None) -> timedelta | None:
    if value is None or value == "":
        return default
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(str(value))
    except ValueError:
        raise ConditionError(f"Invalid duration '{value}'") from None


def _local_time(value: Any, what: str) -> time:
    if value is None:
        raise ConditionError(f"A time window of this type needs '{what}'")
    moment, _offset = parse_offset_time(value)
    return moment


def window_bounds(time_window: Mapping[str, Any] | None, now: datetime, *, window: Any = None,
                  window_advance: Any = None) -> tuple[datetime, datetime]:
    """The [start, end] of the window a new evaluation at ``now`` belongs to (Kestra's
    ``MultipleConditionStorageInterface.getOrCreate``). ``window``/``window_advance`` are the
    deprecated MultipleCondition properties, used when ``time_window`` is absent.

    * DURATION_WINDOW (default, ``window`` P1D): ``now`` truncated to the window unit (day, hour or
      minutes multiple), shifted by ``windowAdvance``; end = start + window - 1 ms.
    * SLIDING_WINDOW: from ``now`` for ``window`` (P1D).
    * DAILY_TIME_WINDOW: today from ``startTime`` to ``endTime``.
    * DAILY_TIME_DEADLINE: today from midnight to ``deadline``.
    """
    spec = dict(time_window or {})
    if not spec and (window is not None or window_advance is not None):
        spec = {"type": "DURATION_WINDOW", "window": window, "windowAdvance": window_advance}
    kind = str(spec.get("type") or "DURATION_WINDOW")
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    day = now.replace(hour=0, minute=0, second=0)
    if kind == "SLIDING_WINDOW":
        return now, now + (_duration(spec.get("window"), timedelta(days=1)) or timedelta(days=1))
    if kind == "DAILY_TIME_WINDOW":
        start_time = _local_time(spec.get("startTime"), "startTime")
        end_time = _local_time(spec.get("endTime"), "endTime")
        return (day + timedelta(hours=start_time.hour, minutes=start_time.minute, seconds=start_time.second),
                day + timedelta(hours=end_time.hour, minutes=end_time.minute, seconds=end_time.second))
    if kind == "DAILY_TIME_DEADLINE":
        deadline = _local_time(spec.get("deadline"), "deadline")
        return day, day + timedelta(hours=deadline.hour, minutes=deadline.minute, seconds=deadline.second)
    if kind != "DURATION_WINDOW":
        raise ConditionError(f"Unknown time window type '{kind}'")
    length = _duration(spec.get("window"), timedelta(days=1)) or timedelta(days=1)
    if length <= timedelta(0):
        raise ConditionError("The window must be a positive duration")
    start = now
    if length >= timedelta(days=1):
        start = start.replace(hour=0)
    if length >= timedelta(hours=1):
        start = start.replace(minute=0)
    if length >= timedelta(minutes=1):
        minutes = int(length.total_seconds() // 60)
        start = start.replace(second=0, minute=0) + timedelta(minutes=minutes * (start.minute // minutes))
    advance = _duration(spec.get("windowAdvance"), None)
    if advance:
        start = start + advance
    return start, start + length - timedelta(milliseconds=1)


def window_is_valid(start: datetime, end: datetime, now: datetime) -> bool:
    """Kestra's ``MultipleConditionWindow.isValid``: strictly inside the window."""
    return start < now < end
