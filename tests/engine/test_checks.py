"""Flow ``checks`` (engine side): which checks fail for given inputs, the behaviour applied, the messages."""
from __future__ import annotations

import pytest

from orchestrator.engine import checks
from orchestrator.engine.parser import parse_flow


def flow_with(checks_yaml: str):
    return parse_flow("id: f\nnamespace: company.team\ninputs:\n  - id: n\n    type: INT\n"
                      "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
                      "checks:\n" + checks_yaml)


def test_a_true_condition_passes_and_a_false_one_fails_in_order():
    flow = flow_with("""  - condition: "{{ inputs.n > 3 }}"
    message: n must exceed 3
  - condition: "{{ inputs.n < 10 }}"
    message: n must stay under 10
    behavior: FAIL_EXECUTION
    style: WARNING
""")

    assert checks.failed_checks(flow.checks, {"n": 5}) == []
    failed = checks.failed_checks(flow.checks, {"n": 12})
    assert [c["message"] for c in failed] == ["n must stay under 10"]
    assert failed[0]["style"] == "WARNING"
    assert checks.resolve_behavior(failed) == checks.FAIL_EXECUTION
    assert [c["message"] for c in checks.failed_checks(flow.checks, {"n": 1})] == ["n must exceed 3"]


def test_only_the_boolean_true_passes():
    flow = flow_with("""  - condition: "true"
    message: literal text
  - condition: "{{ inputs.n }}"
    message: a number is not true
  - condition: "{{ 1 == 1 }}"
    message: passes
""")

    assert [c["message"] for c in checks.failed_checks(flow.checks, {"n": 1})] == ["literal text",
                                                                                   "a number is not true"]


def test_the_strongest_behavior_of_the_failing_checks_wins():
    block = {"behavior": checks.BLOCK_EXECUTION}
    fail = {"behavior": checks.FAIL_EXECUTION}
    create = {"behavior": checks.CREATE_EXECUTION}

    assert checks.resolve_behavior([]) == checks.CREATE_EXECUTION
    assert checks.resolve_behavior([create]) == checks.CREATE_EXECUTION
    assert checks.resolve_behavior([create, fail]) == checks.FAIL_EXECUTION
    assert checks.resolve_behavior([fail, block, create]) == checks.BLOCK_EXECUTION


def test_defaults_are_block_and_info():
    flow = flow_with("""  - condition: "{{ inputs.n == 0 }}"
    message: zero only
""")

    failed = checks.failed_checks(flow.checks, {"n": 2})
    assert checks.resolve_behavior(failed) == checks.BLOCK_EXECUTION
    assert checks.check_failures(failed) == [{"message": "zero only", "style": "INFO",
                                              "behavior": "BLOCK_EXECUTION"}]


def test_a_condition_that_cannot_render_blocks_with_its_cause():
    flow = flow_with("""  - condition: "{{ inputs.missing.field }}"
    message: never shown
    behavior: CREATE_EXECUTION
""")

    failed = checks.failed_checks(flow.checks, {"n": 2})
    assert len(failed) == 1
    assert failed[0]["behavior"] == checks.BLOCK_EXECUTION and failed[0]["style"] == "ERROR"
    assert failed[0]["message"].startswith("Failed to evaluate check condition. Cause: ")
    assert "missing" in failed[0]["message"]


def test_blocked_message_lists_every_failing_message():
    error = checks.ExecutionBlocked([{"message": "first"}, {"message": "second"}])

    assert str(error) == ("Flow execution blocked: one or more condition checks evaluated to false.\n"
                          "Failed checks: first, second")


def test_the_condition_is_read_from_when_too():
    assert checks.failed_checks([{"when": "{{ inputs.n == 1 }}", "message": "m"}], {"n": 1}) == []
    assert len(checks.failed_checks([{"when": "{{ inputs.n == 1 }}", "message": "m"}], {"n": 2})) == 1


@pytest.mark.parametrize("bad, where", [
    ("  - message: no condition\n", "checks[0].condition"),
    ("  - condition: x\n    message: m\n    behavior: STOP\n", "checks[0].behavior"),
])
def test_bad_checks_name_their_field(bad, where):
    from orchestrator.engine.flow import FlowValidationError

    with pytest.raises(FlowValidationError) as info:
        flow_with(bad)
    assert where in str(info.value)
