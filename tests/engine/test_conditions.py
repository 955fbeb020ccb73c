"""Trigger conditions, evaluated without a database (orchestrator.engine.conditions)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from orchestrator.engine.conditions import (
    ConditionContext, ConditionError, all_valid, evaluate, filter_matches, is_public_holiday, named_conditions,
    parse_datetime, preconditions_conditions, satisfied, upstream_flow_matches, window_bounds, window_is_valid,
)
from orchestrator.engine.flow import parse_flow

NOW = datetime(2024, 6, 12, 10, 30, 15, tzinfo=timezone.utc)  # a Wednesday


def conditions(yaml_conditions: str) -> list:
    """Parse a Flow trigger with these conditions (so that types, aliases and nesting are the parser's)."""
    body = "\n".join("      " + line for line in yaml_conditions.strip("\n").splitlines())
    source = ("id: listener\nnamespace: company.team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
              "    message: hi\ntriggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Flow\n"
              "    conditions:\n" + body + "\n")
    return parse_flow(source).triggers[0].conditions


def upstream(**overrides) -> dict:
    data = {
        "id": "exec1", "namespace": "company.team.sub", "flowId": "upstream", "flowRevision": 1,
        "state": {"current": "SUCCESS"}, "labels": [{"key": "env", "value": "prod"},
                                                   {"key": "system.correlationId", "value": "exec1"}],
        "outputs": {"date": "2024-06-10"}, "taskRunList": [],
    }
    data.update(overrides)
    return data


def ctx(execution: dict | None = None, **kwargs) -> ConditionContext:
    variables = kwargs.pop("variables", {})
    return ConditionContext(execution=execution, flow={"namespace": "company.team", "id": "listener"},
                            variables=variables, now=kwargs.pop("now", NOW), **kwargs)


def check(yaml_conditions: str, context: ConditionContext) -> bool:
    return all_valid(conditions(yaml_conditions), context)


# --- execution conditions -------------------------------------------------------------------------

def test_execution_flow_matches_namespace_and_flow_id():
    text = """
- type: io.kestra.plugin.core.condition.ExecutionFlow
  namespace: company.team.sub
  flowId: upstream
"""
    assert check(text, ctx(upstream()))
    assert not check(text, ctx(upstream(flowId="other")))
    assert not check(text, ctx(upstream(namespace="company.team")))


@pytest.mark.parametrize("props, expected", [
    ("namespace: company.team.sub", True),
    ("namespace: company.team", False),
    ("namespace: company.team\n  prefix: true", True),
    ("namespace: company\n  comparison: PREFIX", True),
    ("namespace: team.sub\n  comparison: SUFFIX", True),
    ("namespace: company.team\n  comparison: SUFFIX", False),
    ("namespace: company.team\n  comparison: EQUALS\n  prefix: true", False),  # comparison wins over prefix
])
def test_execution_namespace_comparisons(props, expected):
    text = f"- type: io.kestra.plugin.core.condition.ExecutionNamespace\n  {props}\n"
    assert check(text, ctx(upstream())) is expected


def test_execution_status_in_and_not_in():
    text = """
- type: io.kestra.plugin.core.condition.ExecutionStatus
  in: [SUCCESS, WARNING]
  notIn: [WARNING]
"""
    assert check(text, ctx(upstream()))
    assert not check(text, ctx(upstream(state={"current": "WARNING"})))
    assert not check(text, ctx(upstream(state={"current": "FAILED"})))


def test_legacy_condition_type_names_are_aliases():
    text = """
- type: io.kestra.core.models.conditions.types.ExecutionStatusCondition
  in: [FAILED]
- type: io.kestra.core.models.conditions.types.FlowCondition
  namespace: company.team.sub
  flowId: upstream
"""
    assert check(text, ctx(upstream(state={"current": "FAILED"})))


def test_flow_namespace_condition_prefix():
    text = "- type: io.kestra.plugin.core.condition.FlowNamespaceCondition\n  namespace: company\n  prefix: true\n"
    assert check(text, ctx(upstream()))
    text = "- type: io.kestra.plugin.core.condition.FlowNamespaceCondition\n  namespace: company\n"
    assert not check(text, ctx(upstream()))


def test_execution_labels_map_and_list():
    assert check("- type: io.kestra.plugin.core.condition.ExecutionLabels\n  labels:\n    env: prod\n",
                 ctx(upstream()))
    assert not check("- type: io.kestra.plugin.core.condition.ExecutionLabels\n  labels:\n    env: dev\n",
                     ctx(upstream()))
    text = "- type: io.kestra.plugin.core.condition.ExecutionLabels\n  labels:\n    - key: env\n      value: prod\n"
    assert check(text, ctx(upstream()))


def test_execution_outputs_sees_trigger_outputs_and_is_false_without_outputs():
    text = "- type: io.kestra.plugin.core.condition.ExecutionOutputs\n  expression: \"{{ trigger.outputs.date == '2024-06-10' }}\"\n"
    assert check(text, ctx(upstream()))
    assert not check(text, ctx(upstream(outputs=None)))


def test_expression_condition_renders_the_context():
    text = "- type: io.kestra.plugin.core.condition.Expression\n  expression: \"{{ trigger.flowId == 'upstream' }}\"\n"
    assert check(text, ctx(upstream(), variables={"trigger": {"flowId": "upstream"}}))
    assert not check(text, ctx(upstream(), variables={"trigger": {"flowId": "x"}}))


def test_expression_that_does_not_render_raises_condition_error():
    text = "- type: io.kestra.plugin.core.condition.Expression\n  expression: \"{{ missing.value }}\"\n"
    with pytest.raises(ConditionError):
        check(text, ctx(upstream()))


def test_has_retry_attempt_looks_at_attempts_of_retried_runs():
    runs = [{"taskId": "a", "attempts": [{"state": {"current": "FAILED"}}, {"state": {"current": "SUCCESS"}}]}]
    assert check("- type: io.kestra.plugin.core.condition.HasRetryAttempt\n  in: [FAILED]\n",
                 ctx(upstream(taskRunList=runs)))
    assert not check("- type: io.kestra.plugin.core.condition.HasRetryAttempt\n  in: [KILLED]\n",
                     ctx(upstream(taskRunList=runs)))
    single = [{"taskId": "a", "attempts": [{"state": {"current": "FAILED"}}]}]
    assert not check("- type: io.kestra.plugin.core.condition.HasRetryAttempt\n  in: [FAILED]\n",
                     ctx(upstream(taskRunList=single)))


def test_execution_condition_without_execution_is_an_error():
    with pytest.raises(ConditionError, match="null execution"):
        check("- type: io.kestra.plugin.core.condition.ExecutionStatus\n  in: [SUCCESS]\n", ctx(None))


def test_not_and_or():
    text = """
- type: io.kestra.plugin.core.condition.Not
  conditions:
    - type: io.kestra.plugin.core.condition.ExecutionStatus
      in: [FAILED]
- type: io.kestra.plugin.core.condition.Or
  conditions:
    - type: io.kestra.plugin.core.condition.ExecutionFlow
      namespace: nope
      flowId: nope
    - type: io.kestra.plugin.core.condition.ExecutionNamespace
      namespace: company
      comparison: PREFIX
"""
    assert check(text, ctx(upstream()))
    assert not check(text, ctx(upstream(state={"current": "FAILED"})))


# --- date conditions (schedules) -------------------------------------------------------------------

def dated(when: str) -> ConditionContext:
    return ctx(None, variables={"trigger": {"date": when}})


def test_date_time_between_is_inclusive():
    text = """
- type: io.kestra.plugin.core.condition.DateTimeBetween
  after: "2024-06-12T10:00:00Z"
  before: "2024-06-12T11:00:00+00:00"
"""
    assert check(text, dated("2024-06-12T10:00:00Z"))
    assert check(text, dated("2024-06-12T12:00:00+01:00"))  # 11:00Z
    assert not check(text, dated("2024-06-12T11:00:01Z"))


def test_date_time_between_needs_a_bound():
    with pytest.raises(ConditionError, match="no before nor after"):
        check("- type: io.kestra.plugin.core.condition.DateTimeBetween\n", dated("2024-06-12T10:00:00Z"))


def test_time_between_compares_offset_times_exclusively():
    text = """
- type: io.kestra.plugin.core.condition.TimeBetween
  after: "09:00:00+01:00"
  before: "12:00:00+01:00"
"""
    assert check(text, dated("2024-06-12T10:30:00Z"))       # 11:30+01:00
    assert not check(text, dated("2024-06-12T08:00:00Z"))   # 09:00+01:00: not strictly after
    assert not check(text, dated("2024-06-12T11:00:00Z"))   # 12:00+01:00


def test_day_week_weekend_and_day_in_month():
    assert check("- type: io.kestra.plugin.core.condition.DayWeek\n  dayOfWeek: WEDNESDAY\n",
                 dated("2024-06-12T10:00:00Z"))
    assert not check("- type: io.kestra.plugin.core.condition.Weekend\n", dated("2024-06-12T10:00:00Z"))
    assert check("- type: io.kestra.plugin.core.condition.Weekend\n", dated("2024-06-15T10:00:00Z"))
    first_monday = "- type: io.kestra.plugin.core.condition.DayWeekInMonth\n  dayOfWeek: MONDAY\n  dayInMonth: FIRST\n"
    assert check(first_monday, dated("2024-06-03T10:00:00Z"))
    assert not check(first_monday, dated("2024-06-10T10:00:00Z"))
    last_friday = "- type: io.kestra.plugin.core.condition.DayWeekInMonth\n  dayOfWeek: FRIDAY\n  dayInMonth: LAST\n"
    assert check(last_friday, dated("2024-06-28T10:00:00Z"))
    second = "- type: io.kestra.plugin.core.condition.DayWeekInMonth\n  dayOfWeek: MONDAY\n  dayInMonth: SECOND\n"
    assert check(second, dated("2024-06-10T10:00:00Z"))


def test_the_date_property_overrides_the_trigger_date():
    text = "- type: io.kestra.plugin.core.condition.DayWeek\n  date: \"{{ vars.day }}\"\n  dayOfWeek: SUNDAY\n"
    assert check(text, ctx(None, variables={"vars": {"day": "2024-06-16T00:00:00Z"}, "trigger": {}}))


def test_public_holiday_basic_calendar():
    assert is_public_holiday(date(2024, 7, 14), "FR")
    assert is_public_holiday(date(2024, 4, 1), "FR")      # Easter Monday 2024
    assert is_public_holiday(date(2024, 11, 28), "US")    # Thanksgiving: 4th Thursday
    assert not is_public_holiday(date(2024, 7, 15), "FR")
    assert check("- type: io.kestra.plugin.core.condition.PublicHoliday\n  country: FR\n",
                 dated("2024-12-25T08:00:00+01:00"))


def test_parse_datetime_forms():
    assert parse_datetime("2024-06-12T10:00:00Z") == datetime(2024, 6, 12, 10, tzinfo=timezone.utc)
    paris = parse_datetime("2024-06-12T10:00:00+02:00[Europe/Paris]")
    assert paris.utcoffset() == timedelta(hours=2) and paris.astimezone(timezone.utc).hour == 8
    assert parse_datetime("2024-06-12") == datetime(2024, 6, 12, tzinfo=timezone.utc)
    with pytest.raises(ConditionError):
        parse_datetime("not a date")


# --- MultipleCondition and preconditions ------------------------------------------------------------

MULTIPLE = """
- type: io.kestra.plugin.core.condition.MultipleCondition
  id: both
  window: PT1H
  conditions:
    a:
      type: io.kestra.plugin.core.condition.ExecutionFlow
      namespace: company.team.sub
      flowId: a
    b:
      type: io.kestra.plugin.core.condition.ExecutionFlow
      namespace: company.team.sub
      flowId: b
"""


def test_multiple_condition_reads_its_window_results():
    (multiple,) = conditions(MULTIPLE)
    checks = named_conditions(multiple)
    assert set(checks) == {"a", "b"}
    assert satisfied(checks, ctx(upstream(flowId="a"))) == {"a": True}
    assert not evaluate(multiple, ctx(upstream(flowId="a"), windows={"both": {"a": True}}))
    assert evaluate(multiple, ctx(upstream(flowId="b"), windows={"both": {"a": True, "b": True}}))


def test_preconditions_names_follow_kestra():
    pre = {"id": "p", "flows": [{"namespace": "n", "flowId": "a"}, {"namespace": "n"}],
           "where": [{"id": "only", "filters": [{"field": "STATE", "type": "EQUAL_TO", "value": "SUCCESS"}]}]}
    assert list(preconditions_conditions(pre)) == ["condition_1", "condition_2", "condition_3_only"]


def test_upstream_flow_entry():
    assert upstream_flow_matches({"namespace": "company.team.sub", "flowId": "upstream", "states": ["SUCCESS"],
                                  "labels": {"env": "prod"}}, upstream())
    assert not upstream_flow_matches({"namespace": "company.team.sub", "states": ["FAILED"]}, upstream())
    assert not upstream_flow_matches({"namespace": "company.team.sub", "labels": {"env": "dev"}}, upstream())
    assert upstream_flow_matches({"namespace": "company.team.sub"}, upstream(flowId="any"))


@pytest.mark.parametrize("spec, expected", [
    ({"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company"}, True),
    ({"field": "NAMESPACE", "type": "ENDS_WITH", "value": "team"}, False),
    ({"field": "FLOW_ID", "type": "EQUAL_TO", "value": "upstream"}, True),
    ({"field": "FLOW_ID", "type": "NOT_EQUAL_TO", "value": "upstream"}, False),
    ({"field": "STATE", "type": "IN", "values": ["FAILED", "SUCCESS"]}, True),
    ({"field": "STATE", "type": "NOT_IN", "values": ["SUCCESS"]}, False),
    ({"field": "FLOW_ID", "type": "REGEX", "value": "up.*m"}, True),
    ({"field": "FLOW_ID", "type": "CONTAINS", "value": "strea"}, True),
    ({"field": "EXPRESSION", "type": "IS_TRUE", "value": "{{ labels.env == 'prod' }}"}, True),
    ({"field": "EXPRESSION", "type": "IS_FALSE", "value": "{{ labels.env == 'prod' }}"}, False),
    ({"field": "FLOW_ID", "type": "IS_NOT_NULL"}, True),
])
def test_where_filters(spec, expected):
    variables = {"labels": {"env": "prod"}}
    assert filter_matches({"id": "w", "filters": [spec]}, ctx(upstream(), variables=variables)) is expected


def test_where_operand_or():
    where = {"id": "w", "operand": "OR", "filters": [
        {"field": "FLOW_ID", "type": "EQUAL_TO", "value": "nope"},
        {"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company"}]}
    assert filter_matches(where, ctx(upstream()))
    assert not filter_matches({**where, "operand": "AND"}, ctx(upstream()))


# --- time windows -----------------------------------------------------------------------------------

def test_duration_window_defaults_to_the_day():
    start, end = window_bounds(None, NOW)
    assert start == datetime(2024, 6, 12, tzinfo=timezone.utc)
    assert end == datetime(2024, 6, 12, 23, 59, 59, 999000, tzinfo=timezone.utc)
    assert window_is_valid(start, end, NOW)


def test_duration_window_with_minutes_and_advance():
    start, end = window_bounds({"type": "DURATION_WINDOW", "window": "PT15M"}, NOW)
    assert (start.hour, start.minute) == (10, 30) and end - start == timedelta(minutes=15, milliseconds=-1)
    start, _ = window_bounds({"window": "P1D", "windowAdvance": "PT6H"}, NOW)
    assert start == datetime(2024, 6, 12, 6, tzinfo=timezone.utc)
    start, _ = window_bounds(None, NOW, window="PT1H", window_advance="P0D")  # deprecated properties
    assert start == datetime(2024, 6, 12, 10, tzinfo=timezone.utc)


def test_sliding_and_daily_windows():
    start, end = window_bounds({"type": "SLIDING_WINDOW", "window": "PT2H"}, NOW)
    assert start == NOW.replace(microsecond=0) and end == start + timedelta(hours=2)
    start, end = window_bounds({"type": "DAILY_TIME_WINDOW", "startTime": "06:00:00", "endTime": "09:00:00"}, NOW)
    assert (start.hour, end.hour) == (6, 9)
    assert not window_is_valid(start, end, NOW)
    start, end = window_bounds({"type": "DAILY_TIME_DEADLINE", "deadline": "11:00:00"}, NOW)
    assert start.hour == 0 and end.hour == 11 and window_is_valid(start, end, NOW)
    with pytest.raises(ConditionError):
        window_bounds({"type": "DAILY_TIME_DEADLINE"}, NOW)
