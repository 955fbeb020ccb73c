"""Hostile expressions and YAML: each one fails with a clear error instead of freezing the process.

Durations are not asserted (they are reported by ``bench/``); each test bounds the wait by a
deadline given to the render, so that a regression fails instead of hanging the suite.
"""
from __future__ import annotations

import os
import time

import pytest

from orchestrator.engine import expressions, yamlload
from orchestrator.engine.expressions import ExpressionError, ExpressionTimeout
from orchestrator.engine.expressions import _jq


def render(template: str, budget: float = 1.0, context: dict | None = None):
    return expressions.render(template, context or {}, deadline=time.monotonic() + budget)


# --- regular expressions --------------------------------------------------------------------------

def test_catastrophic_matches_is_stopped_by_the_budget():
    # given: a pattern whose backtracking is exponential in the length of the text
    template = "{{ '" + "a" * 40 + "!'.matches('(a|aa)+$') }}"

    # when / then
    with pytest.raises(ExpressionTimeout, match="time budget"):
        render(template, budget=0.5)


def test_issue_pattern_on_27_characters_answers():
    assert render("{{ '" + "a" * 27 + "!'.matches('(a+)+$') }}") is False
    assert render("{{ 'aaa'.matches('(a+)+$') }}") is True


def test_replace_with_a_runaway_regex_is_stopped():
    template = "{{ '" + "a" * 40 + "!' | replace({'(a|aa)+$': 'x'}, regexp=true) }}"
    with pytest.raises(ExpressionTimeout, match="time budget"):
        render(template, budget=0.5)


def test_regex_keeps_python_and_java_semantics_for_ordinary_patterns():
    assert render("{{ 'a-b-c' | replace({'-([a-z])': '_$1'}, regexp=true) }}") == "a_b_c"
    assert render("{{ 'A1b2'.matches('[A-Za-z0-9]+') }}") is True
    assert render("{{ 'x,y;z' | split('[,;]') }}") == ["x", "y", "z"]


def test_invalid_regex_names_the_pattern():
    with pytest.raises(ExpressionError, match=r"Invalid regular expression '\('"):
        render("{{ 'x'.matches('(') }}")


def test_regex_input_validator_cannot_run_away():
    from orchestrator.engine.errors import InputValidationError
    from orchestrator.engine.inputs import resolve_inputs

    definitions = [{"id": "name", "type": "STRING", "validator": "(a|aa)+$"}]
    with pytest.raises(InputValidationError, match="took longer than"):
        resolve_inputs(definitions, {"name": "a" * 40 + "!"}, render=expressions.render, context={})


# --- jq -----------------------------------------------------------------------------------------

def test_jq_env_reveals_nothing_of_the_server(monkeypatch):
    monkeypatch.setenv("CELESTRA_HOSTILE_CANARY", "do-not-leak")
    assert "CELESTRA_HOSTILE_CANARY" in os.environ
    assert render("{{ '{}' | jq('$ENV') }}") == [{}]
    assert render("{{ {} | jq('env') }}") == [{}]
    assert render("{{ '{}' | jq('$ENV.SECRET_KEY') }}") == [None]


def test_jq_cannot_import_files():
    with pytest.raises(ExpressionError, match="jq modules"):
        render("{{ '{}' | jq('import \"/etc/passwd\" as $p; $p') }}")


@pytest.mark.parametrize("program", ["[range(1e12)]", "def f: f; f", "[repeat(.)]", "[limit(1e12; repeat(1))]"])
def test_jq_loops_are_stopped_by_the_budget(program):
    with pytest.raises(ExpressionTimeout, match="jq program"):
        render("{{ '{}' | jq('" + program + "') }}", budget=0.5)


def test_jq_pool_recovers_after_a_killed_program():
    with pytest.raises(ExpressionTimeout):
        render("{{ '{}' | jq('def f: f; f') }}", budget=0.3)
    assert render("{{ {'a': [1, 2]} | jq('.a | length') }}") == [2]


def test_jq_errors_keep_their_messages():
    with pytest.raises(ExpressionError, match="Failed to resolve JQ expression"):
        render("{{ {} | jq('.[') }}")
    with pytest.raises(ExpressionError, match="Unable to parse jq value"):
        render("{{ 'not json' | jq('.') }}")


def test_jq_runs_in_a_separate_process():
    render("{{ {} | jq('.') }}")
    pids = [process.popen.pid for process in _jq.POOL._idle]
    assert pids and os.getpid() not in pids


# --- time and size budgets ------------------------------------------------------------------------

def test_recursive_macros_fail_instead_of_running_on():
    template = "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}"
    with pytest.raises(ExpressionError):
        render(template)


def test_a_loop_of_expensive_calls_is_stopped_by_the_deadline():
    template = ("{% for i in range(1, 1000000) %}{{ '" + "a" * 18 + "!'.matches('(a|aa)+$') }}{% endfor %}")
    with pytest.raises(ExpressionTimeout, match="time budget"):
        render(template, budget=0.5)


def test_the_configured_budget_applies_without_a_deadline():
    try:
        expressions.configure_limits(time_budget=0.3)
        with pytest.raises(ExpressionTimeout, match="300 ms"):
            expressions.render("{{ '{}' | jq('def f: f; f') }}", {})
    finally:
        expressions.configure_limits(time_budget=5.0)


def test_the_deadline_never_extends_the_budget():
    try:
        expressions.configure_limits(time_budget=0.3)
        with pytest.raises(ExpressionTimeout):
            render("{{ '{}' | jq('def f: f; f') }}", budget=60)
    finally:
        expressions.configure_limits(time_budget=5.0)


def shared_lists(levels: int) -> str:
    return "{% set a = [1, 1] %}" + "{% set a = [a, a] %}" * levels


def test_tojson_of_shared_nested_lists_fails_at_the_size_limit():
    # given: 2**60 leaves built from 60 shared lists
    with pytest.raises(ExpressionError, match="maximum size"):
        render(shared_lists(60) + "{{ a | toJson }}")
    with pytest.raises(ExpressionError, match="maximum size"):
        render(shared_lists(60) + "{{ a }}")


def test_tojson_of_shared_lists_below_the_limit_is_exact():
    assert render(shared_lists(2) + "{{ a | toJson }}") == "[[[1,1],[1,1]],[[1,1],[1,1]]]"


def test_shared_lists_given_to_jq_are_bounded():
    with pytest.raises(ExpressionError, match="maximum size"):
        render(shared_lists(60) + "{{ a | jq('length') }}")


# --- YAML -----------------------------------------------------------------------------------------

ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]" for prev, name in zip("abcdefgh", "bcdefghi")]) + "\n"


def test_yaml_alias_bomb_fails_naming_the_limit():
    assert len(ALIAS_BOMB) < 500
    with pytest.raises(yamlload.YamlError, match=r"aliases .* more than 50 times.*CELESTRA_YAML_MAX_ALIASES"):
        yamlload.load(ALIAS_BOMB)


def test_yaml_aliases_under_the_limit_still_work():
    loaded = yamlload.load("base: &b {x: 1}\none: *b\ntwo:\n  <<: *b\n  y: 2\n")
    assert loaded["one"] == {"x": 1} and loaded["two"] == {"x": 1, "y": 2}


def test_yaml_document_over_the_size_limit_is_refused():
    try:
        yamlload.configure(max_code_points=1000)
        with pytest.raises(yamlload.YamlError, match="more than the limit of 1000 .*CELESTRA_YAML_MAX_CHARS"):
            yamlload.load("id: " + "x" * 1000)
    finally:
        yamlload.configure(max_code_points=3 * 1024 * 1024)


def test_flow_parser_reports_the_alias_bomb_as_a_validation_error():
    from orchestrator.engine.flow import FlowValidationError, parse_flow

    with pytest.raises((FlowValidationError, yamlload.YamlError), match="CELESTRA_YAML_MAX_ALIASES"):
        parse_flow("id: f\nnamespace: n\n" + ALIAS_BOMB.replace("a: &a", "x: &a"))


# --- values built from a small template ---------------------------------------------------------------

@pytest.mark.parametrize("template, error", [
    ("{{ 'a\nb' | indent(1000000000) }}", "maximum size"),
    ("{{ '%01000000000d' | format(1) }}", "more than 1000000 characters"),
    ("{{ '%1000000000s' | format('x') }}", "more than 1000000 characters"),
    ("{{ '%.1000000000f' | format(1.5) }}", "more than 1000000 characters"),
])
def test_padding_and_widths_are_refused_before_the_text_is_built(template, error):
    with pytest.raises(ExpressionError, match=error):
        render(template)


def test_integer_arithmetic_wraps_like_java_long():
    # Squaring in a loop would otherwise build numbers of gigabytes in one uninterruptible operation.
    template = "{% set n = 3 %}{% for i in range(1, 40) %}{% set n = n * n %}{% endfor %}{{ n }}"
    assert isinstance(render(template), str)
    assert render("{{ 9223372036854775807 + 1 }}") == -9223372036854775808
    assert render("{{ 3037000500 * 3037000500 }}") == -9223372036709301616
