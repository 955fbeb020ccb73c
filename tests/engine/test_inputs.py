"""Flow inputs and outputs: typing, validation and Kestra's messages (spec §5, §6.1, corpus InputsTest)."""
from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.engine.errors import InputValidationError
from orchestrator.engine.inputs import (
    INPUT_TYPES,
    InputFile,
    evaluate_inputs,
    input_file_uri,
    render_flow_outputs,
    resolve_inputs,
    resolve_outputs,
    secret_input_ids,
    typed_value,
    validate_definitions,
    validate_output_definitions,
)


# ---------------------------------------------------------------------------------------------------------
# Fixtures: an in-memory file store, a tiny renderer, the corpus flow valids/inputs.yaml
# ---------------------------------------------------------------------------------------------------------

class MemoryStore:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put_input_file(self, namespace: str, flow_id: str, execution_id: str, input_id: str,
                       filename: str, content: bytes) -> str:
        uri = input_file_uri(namespace, flow_id, execution_id, input_id, filename)
        self.files[uri] = content
        return uri

    def exists(self, uri: str) -> bool:
        return uri in self.files


_LONE = re.compile(r"^\{\{\s*(.+?)\s*\}\}$")


def fake_render(value: Any, context: dict) -> Any:
    """Understands ``{{ a.b.c }}``, ``{{ a.b == 'x' }}``, ``{{ fail }}`` and ``{{ [..] }}`` list literals."""
    match = _LONE.match(value)
    if not match:
        raise AssertionError(f"fake renderer cannot render {value!r}")
    expr = match.group(1)
    if expr == "fail":
        raise RuntimeError("Unable to find `fail` used in the expression")
    if expr.startswith("["):
        return [item.strip().strip("'") for item in expr.strip("[]").split(",")]
    comparison = re.fullmatch(r"(.+?)\s*==\s*'(.*)'", expr)
    path = comparison.group(1) if comparison else expr
    node: Any = context
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise RuntimeError(f"Unable to find `{part}` used in the expression `{value}`")
        node = node[part]
    return node == comparison.group(2) if comparison else node


INPUTS_FLOW: list[dict[str, Any]] = [
    {"id": "string", "type": "STRING"},
    {"id": "enum", "type": "ENUM", "values": ["ENUM_VALUE", "OTHER_ONE"]},
    {"id": "optional", "type": "STRING", "required": False},
    {"id": "int", "type": "INT"},
    {"id": "bool", "type": "BOOLEAN", "required": False},
    {"id": "float", "type": "FLOAT"},
    {"id": "instant", "type": "DATETIME"},
    {"id": "date", "type": "DATE", "required": False},
    {"id": "time", "type": "TIME", "required": False},
    {"id": "duration", "type": "DURATION", "required": False},
    {"id": "file", "type": "FILE"},
    {"id": "optionalFile", "type": "FILE", "required": False},
    {"id": "instantDefaults", "type": "DATETIME", "defaults": "2013-08-09T14:19:00Z"},
    {"id": "json", "type": "JSON", "required": False},
    {"id": "uri", "type": "URI", "required": False},
    {"id": "nested.string", "type": "STRING", "required": False},
    {"id": "nested.more.int", "type": "INT", "required": False},
    {"id": "nested.bool", "type": "BOOLEAN", "required": False},
    {"id": "validatedString", "type": "STRING", "validator": r"A\d+", "required": False},
    {"id": "validatedInt", "type": "INT", "min": 10, "max": 20, "required": False},
    # YAML parses an unquoted 2023-01-01 to a date: bounds must accept native dates
    {"id": "validatedDate", "type": "DATE", "after": __import__("datetime").date(2023, 1, 1),
     "before": __import__("datetime").date(2023, 12, 31), "required": False},
    {"id": "validatedDateTime", "type": "DATETIME", "after": "2023-01-01T00:00:00Z",
     "before": "2023-12-31T23:59:59Z", "required": False},
    {"id": "validatedDuration", "type": "DURATION", "min": "PT10S", "max": "PT20S", "required": False},
    {"id": "validatedFloat", "type": "FLOAT", "min": 0.1, "max": 0.5, "required": False},
    {"id": "validatedTime", "type": "TIME", "after": "01:00:00", "before": "11:59:59", "required": False},
    {"name": "secret", "type": "SECRET"},
    {"name": "array", "type": "ARRAY", "itemType": "INT"},
    {"name": "yaml", "type": "YAML", "defaults": {
        "property": "something", "list": [{"key": "key1", "value": "value1"}, {"key": "key2", "value": "value2"}]}},
    {"name": "empty", "type": "STRING", "defaults": "", "required": True},
]

INPUTS_TEST_VALUES: dict[str, Any] = {
    "string": "myString",
    "enum": "ENUM_VALUE",
    "int": "42",
    "float": "42.42",
    "bool": "false",
    "instant": "2019-10-06T18:27:49Z",
    "date": "2019-10-06",
    "time": "18:27:49",
    "duration": "PT5M6S",
    "json": '{"a": "b"}',
    "uri": "https://www.google.com",
    "nested.string": "a string",
    "nested.more.int": "123",
    "nested.bool": "true",
    "validatedString": "A123",
    "validatedInt": "12",
    "validatedDate": "2023-01-02",
    "validatedDateTime": "2023-01-01T00:00:10Z",
    "validatedDuration": "PT15S",
    "validatedFloat": "0.42",
    "validatedTime": "11:27:49",
    "secret": "secret",
    "array": "[1, 2, 3]",
    "yaml": "some: property\nalist:\n- of\n- values",
}


def run_flow(overrides: dict[str, Any] | None = None, remove: tuple[str, ...] = (),
             store: MemoryStore | None = None) -> dict[str, Any]:
    submitted = {**INPUTS_TEST_VALUES, "file": InputFile("application-test.yml", b"kestra: {}\n"),
                 **(overrides or {})}
    for key in remove:
        submitted.pop(key)
    return resolve_inputs(INPUTS_FLOW, submitted, files=store or MemoryStore(), namespace="io.kestra.tests",
                          flow_id="inputs", execution_id="test")


def errors_of(definitions: list[dict], submitted: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(InputValidationError) as caught:
        resolve_inputs(definitions, submitted, **kwargs)
    return caught.value.errors


def one_error(type_name: str, value: Any, **definition: Any) -> str:
    errors = errors_of([{"id": "x", "type": type_name, **definition}], {"x": value})
    assert len(errors) == 1 and errors[0][0] == "x"
    return errors[0][1]


# ---------------------------------------------------------------------------------------------------------
# Corpus: InputsTest on valids/inputs.yaml
# ---------------------------------------------------------------------------------------------------------

def test_all_valid_inputs_are_typed_like_kestra() -> None:
    store = MemoryStore()
    typed = run_flow(store=store)
    expected_file = "kestra:///io/kestra/tests/inputs/executions/test/inputs/file/application-test.yml"
    assert typed == {
        "string": "myString",
        "enum": "ENUM_VALUE",
        "optional": None,
        "int": 42,
        "bool": False,
        "float": 42.42,
        "instant": "2019-10-06T18:27:49Z",
        "date": "2019-10-06",
        "time": "18:27:49",
        "duration": "PT5M6S",
        "file": expected_file,
        "optionalFile": None,
        "instantDefaults": "2013-08-09T14:19:00Z",
        "json": {"a": "b"},
        "uri": "https://www.google.com",
        "nested": {"string": "a string", "bool": True, "more": {"int": 123}},
        "validatedString": "A123",
        "validatedInt": 12,
        "validatedDate": "2023-01-02",
        "validatedDateTime": "2023-01-01T00:00:10Z",
        "validatedDuration": "PT15S",
        "validatedFloat": 0.42,
        "validatedTime": "11:27:49",
        "secret": "secret",
        "array": [1, 2, 3],
        "yaml": {"some": "property", "alist": ["of", "values"]},
        "empty": "",
    }
    assert store.files[expected_file] == b"kestra: {}\n"


def test_optional_input_absent_is_present_with_none() -> None:
    typed = run_flow(remove=("bool",))
    assert "bool" in typed and typed["bool"] is None


def test_empty_json_object() -> None:
    assert run_flow({"json": "{}"})["json"] == {}


def test_yaml_defaults_used_when_not_submitted() -> None:
    assert run_flow(remove=("yaml",))["yaml"] == {
        "property": "something", "list": [{"key": "key1", "value": "value1"}, {"key": "key2", "value": "value2"}]}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("string", None, "Invalid input for `string`, missing required input, but received `null`"),
    ("validatedString", "foo", "Invalid input for `validatedString`, it must match the pattern `A\\d+`, "
                               "but received `foo`"),
    ("validatedInt", "9", "Invalid input for `validatedInt`, it must be more than `10`, but received `9`"),
    ("validatedInt", "21", "Invalid input for `validatedInt`, it must be less than `20`, but received `21`"),
    ("validatedDate", "2022-01-01",
     "Invalid input for `validatedDate`, it must be after `2023-01-01`, but received `2022-01-01`"),
    ("validatedDate", "2024-01-01",
     "Invalid input for `validatedDate`, it must be before `2023-12-31`, but received `2024-01-01`"),
    ("validatedDateTime", "2022-01-01T00:00:00Z", "Invalid input for `validatedDateTime`, it must be after "
                                                  "`2023-01-01T00:00:00Z`, but received `2022-01-01T00:00:00Z`"),
    ("validatedDateTime", "2024-01-01T00:00:00Z", "Invalid input for `validatedDateTime`, it must be before "
                                                  "`2023-12-31T23:59:59Z`, but received `2024-01-01T00:00:00Z`"),
    ("validatedDuration", "PT1S",
     "Invalid input for `validatedDuration`, It must be more than `PT10S`, but received `PT1S`"),
    ("validatedDuration", "PT30S",
     "Invalid input for `validatedDuration`, It must be less than `PT20S`, but received `PT30S`"),
    ("validatedFloat", "0.01", "Invalid input for `validatedFloat`, it must be more than `0.1`, but received `0.01`"),
    ("validatedFloat", "1.01", "Invalid input for `validatedFloat`, it must be less than `0.5`, but received `1.01`"),
    ("validatedTime", "00:00:01",
     "Invalid input for `validatedTime`, it must be after `01:00`, but received `00:00:01`"),
    ("validatedTime", "14:00:00",
     "Invalid input for `validatedTime`, it must be before `11:59:59`, but received `14:00:00`"),
    ("uri", "http:/bla", "Invalid input for `uri`, Expected `URI` but received `http:/bla`, but received `http:/bla`"),
    ("enum", "INVALID", "Invalid input for `enum`, it must match the values `[ENUM_VALUE, OTHER_ONE]`, "
                        "but received `INVALID`"),
    ("array", '["s1", "s2"]', "Invalid input for `array`, Unable to parse array element as `INT` on `s1`, "
                              'but received `["s1", "s2"]`'),
])
def test_corpus_error_messages(key: str, value: Any, message: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        run_flow({key: value})
    assert caught.value.errors == [(key, message)]
    assert str(caught.value) == message


def test_all_errors_are_collected_in_declaration_order() -> None:
    with pytest.raises(InputValidationError) as caught:
        run_flow({"validatedInt": "9", "string": None, "uri": "nope"})
    assert [path for path, _ in caught.value.errors] == ["string", "uri", "validatedInt"]
    assert str(caught.value).count("Invalid input for") == 3


# ---------------------------------------------------------------------------------------------------------
# Parsing per type
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("type_name", "value", "expected", "extra"), [
    ("STRING", "hello", "hello", {}),
    ("STRING", 42, "42", {}),
    ("STRING", True, "true", {}),
    ("STRING", {"a": 1}, '{"a": 1}', {}),
    ("SELECT", "b", "b", {"values": ["a", "b"]}),
    ("ENUM", "a", "a", {"values": ["a", "b"]}),
    ("EMAIL", "john.doe@example.com", "john.doe@example.com", {}),
    ("EMAIL", "", "", {}),
    ("URI", "https://kestra.io/docs?x=1", "https://kestra.io/docs?x=1", {}),
    ("SECRET", "p@ss", "p@ss", {}),
    ("INT", "42", 42, {}),
    ("INT", "-7", -7, {}),
    ("INT", "+7", 7, {}),
    ("INT", 12, 12, {}),
    ("INT", "2147483647", 2147483647, {}),
    ("FLOAT", "42.42", 42.42, {}),
    ("FLOAT", "1e3", 1000.0, {}),
    ("FLOAT", "3", 3.0, {}),
    ("FLOAT", 2, 2.0, {}),
    ("FLOAT", 0.5, 0.5, {}),
    ("BOOLEAN", "true", True, {}),
    ("BOOLEAN", "TRUE", True, {}),
    ("BOOLEAN", "yes", False, {}),
    ("BOOLEAN", "false", False, {}),
    ("BOOLEAN", True, True, {}),
    ("BOOLEAN", False, False, {}),
    ("BOOL", "True", True, {}),
    ("DATETIME", "2019-10-06T18:27:49Z", "2019-10-06T18:27:49Z", {}),
    ("DATETIME", "2042-04-02T04:20:42.000Z", "2042-04-02T04:20:42Z", {}),
    ("DATETIME", "2042-04-02T04:20:42.5Z", "2042-04-02T04:20:42.500Z", {}),
    ("DATETIME", "2042-04-02T04:20:42.123456Z", "2042-04-02T04:20:42.123456Z", {}),
    ("DATETIME", "2042-04-02T04:20:42.123456789Z", "2042-04-02T04:20:42.123456789Z", {}),
    ("DATETIME", "2019-10-06T20:27:49+02:00", "2019-10-06T18:27:49Z", {}),
    ("DATETIME", __import__("datetime").datetime(2019, 10, 6, 18, 27, 49,
                                                 tzinfo=__import__("datetime").timezone.utc),
     "2019-10-06T18:27:49Z", {}),
    ("DATE", "2019-10-06", "2019-10-06", {}),
    ("DATE", __import__("datetime").date(2019, 10, 6), "2019-10-06", {}),
    ("TIME", "18:27:49", "18:27:49", {}),
    ("TIME", "18:27", "18:27:00", {}),
    ("TIME", "18:27:49.250", "18:27:49.25", {}),
    ("DURATION", "PT5M6S", "PT5M6S", {}),
    ("DURATION", "PT306S", "PT5M6S", {}),
    ("DURATION", "P1D", "PT24H", {}),
    ("DURATION", "PT1.5S", "PT1.5S", {}),
    ("JSON", '{"a": [1, 2]}', {"a": [1, 2]}, {}),
    ("JSON", "[1, 2]", [1, 2], {}),
    ("JSON", {"a": "b"}, {"a": "b"}, {}),
    ("JSON", "42", 42, {}),
    ("YAML", "a: 1\nb: [x, y]", {"a": 1, "b": ["x", "y"]}, {}),
    ("YAML", "when: 2024-01-01", {"when": "2024-01-01"}, {}),
    ("YAML", "flag: yes", {"flag": "yes"}, {}),
    ("YAML", {"k": "v"}, {"k": "v"}, {}),
    ("ARRAY", "[1, 2, 3]", [1, 2, 3], {"itemType": "INT"}),
    ("ARRAY", ["1", "2"], [1, 2], {"itemType": "INT"}),
    ("ARRAY", '["a", "b"]', ["a", "b"], {"itemType": "STRING"}),
    ("ARRAY", "[1, 2]", ["1", "2"], {"itemType": "STRING"}),
    ("ARRAY", '["2019-10-06T18:27:49Z"]', ["2019-10-06T18:27:49Z"], {"itemType": "DATETIME"}),
    ("ARRAY", '["PT306S"]', ["PT5M6S"], {"itemType": "DURATION"}),
    ("ARRAY", '[{"a": 1}]', [{"a": 1}], {"itemType": "JSON"}),
    ("MULTISELECT", '["a", "c"]', ["a", "c"], {"values": ["a", "b", "c"]}),
    ("MULTISELECT", ["b"], ["b"], {"options": ["a", "b"]}),
    ("MULTISELECT", ["z"], ["z"], {"values": ["a"], "allowCustomValue": True}),
    ("SELECT", "z", "z", {"values": ["a"], "allowCustomValue": True}),
])
def test_parse_each_type(type_name: str, value: Any, expected: Any, extra: dict[str, Any]) -> None:
    typed = resolve_inputs([{"id": "x", "type": type_name, **extra}], {"x": value})
    assert typed == {"x": expected}
    assert type(typed["x"]) is type(expected)


@pytest.mark.parametrize(("type_name", "value", "message"), [
    ("INT", "abc", 'Invalid input for `x`, Expected `INT` but received `abc` with errors:\n```\n'
                   'For input string: "abc"\n```, but received `abc`'),
    ("INT", "4.2", 'Invalid input for `x`, Expected `INT` but received `4.2` with errors:\n```\n'
                   'For input string: "4.2"\n```, but received `4.2`'),
    ("INT", "2147483648", 'Invalid input for `x`, Expected `INT` but received `2147483648` with errors:\n```\n'
                          'For input string: "2147483648" (out of the 32-bit integer range)\n```, '
                          'but received `2147483648`'),
    ("FLOAT", "abc", 'Invalid input for `x`, Expected `FLOAT` but received `abc` with errors:\n```\n'
                     'For input string: "abc"\n```, but received `abc`'),
    ("DURATION", "5 minutes", "Invalid input for `x`, Expected `DURATION` but received `5 minutes` with errors:\n"
                              "```\nText cannot be parsed to a Duration\n```, but received `5 minutes`"),
    ("DATETIME", "2019-10-06", "Invalid input for `x`, Expected `DATETIME` but received `2019-10-06` with errors:\n"
                               "```\nText '2019-10-06' could not be parsed\n```, but received `2019-10-06`"),
    ("DATE", "06/10/2019", "Invalid input for `x`, Expected `DATE` but received `06/10/2019` with errors:\n"
                           "```\nText '06/10/2019' could not be parsed\n```, but received `06/10/2019`"),
    ("TIME", "25:00", "Invalid input for `x`, Expected `TIME` but received `25:00` with errors:\n"
                      "```\nText '25:00' could not be parsed: invalid value\n```, but received `25:00`"),
    ("URI", "not a uri", "Invalid input for `x`, Expected `URI` but received `not a uri`, but received `not a uri`"),
    ("EMAIL", "nope", "Invalid input for `x`, The input must be a valid email, but received `nope`"),
])
def test_parse_failures(type_name: str, value: str, message: str) -> None:
    assert one_error(type_name, value) == message


def test_datetime_without_zone_is_refused() -> None:
    assert one_error("DATETIME", "2019-10-06T18:27:49").startswith(
        "Invalid input for `x`, Expected `DATETIME` but received `2019-10-06T18:27:49` with errors:")


def test_json_parse_failure_keeps_the_shape() -> None:
    message = one_error("JSON", "{nope")
    assert message.startswith("Invalid input for `x`, Expected `JSON` but received `{nope` with errors:\n```\n")
    assert message.endswith("\n```, but received `{nope`")


def test_yaml_duplicate_keys_are_refused() -> None:
    assert one_error("YAML", "a: 1\na: 2").startswith(
        "Invalid input for `x`, Expected `YAML` but received `a: 1\na: 2` with errors:\n```\n"
        "line 2: Duplicate field 'a'")


def test_native_int_out_of_range_and_bool_refused() -> None:
    assert "Expected `INT`" in one_error("INT", 2 ** 31)
    assert "Expected `INT`" in one_error("INT", True)
    assert "Expected `FLOAT`" in one_error("FLOAT", False)


def test_array_errors() -> None:
    assert one_error("ARRAY", "[1, \"x\"]", itemType="INT") == (
        'Invalid input for `x`, Unable to parse array element as `INT` on `x`, but received `[1, "x"]`')
    assert one_error("ARRAY", ["a"], itemType="DATE") == (
        "Invalid input for `x`, Unable to parse array element as `DATE` on `a`, but received `[a]`")
    assert one_error("ARRAY", '{"a": 1}', itemType="INT").startswith(
        "Invalid input for `x`, Expected `ARRAY` but received `{\"a\": 1}` with errors:")


def test_select_and_multiselect_choices() -> None:
    assert one_error("SELECT", "c", values=["a", "b"]) == (
        "Invalid input for `x`, it must match the values `[a, b]`, but received `c`")
    assert one_error("MULTISELECT", '["a", "c"]', values=["a", "b"]) == (
        'Invalid input for `x`, it must match the values `[a, b]`, but received `["a", "c"]`')
    assert one_error("MULTISELECT", "a", values=["a"]).startswith(
        "Invalid input for `x`, Expected `MULTISELECT` but received `a` with errors:")


def test_select_values_may_be_value_label_objects() -> None:
    definition = {"id": "x", "type": "SELECT", "values": [{"value": "a", "label": "A"}, {"value": "b"}]}
    assert resolve_inputs([definition], {"x": "b"}) == {"x": "b"}


def test_optional_select_is_not_checked_against_its_values() -> None:
    """Kestra only checks SELECT/ENUM choices when the input is required."""
    definition = {"id": "x", "type": "SELECT", "values": ["a"], "required": False}
    assert resolve_inputs([definition], {"x": "zzz"}) == {"x": "zzz"}


def test_string_validator_is_a_full_match() -> None:
    definition = {"id": "x", "type": "STRING", "validator": r"A\d+"}
    assert resolve_inputs([definition], {"x": "A12"}) == {"x": "A12"}
    errors = errors_of([definition], {"x": "A12b"})
    assert errors == [("x", "Invalid input for `x`, it must match the pattern `A\\d+`, but received `A12b`")]


def test_secret_validator_and_secret_ids() -> None:
    definitions = [{"id": "s", "type": "SECRET", "validator": "[a-z]+"}, {"name": "t", "type": "SECRET"},
                   {"id": "plain", "type": "STRING"}]
    assert secret_input_ids(definitions) == {"s", "t"}
    assert errors_of(definitions[:1], {"s": "ABC"}) == [
        ("s", "Invalid input for `s`, it must match the pattern `[a-z]+`, but received `ABC`")]


def test_bounds_are_inclusive() -> None:
    assert resolve_inputs([{"id": "x", "type": "INT", "min": 10, "max": 20}], {"x": "10"}) == {"x": 10}
    assert resolve_inputs([{"id": "x", "type": "INT", "min": 10, "max": 20}], {"x": "20"}) == {"x": 20}
    assert resolve_inputs([{"id": "x", "type": "DATE", "after": "2023-01-01"}], {"x": "2023-01-01"}) == {
        "x": "2023-01-01"}


def test_float_bound_printed_like_java() -> None:
    assert one_error("FLOAT", "0.5", min=1) == "Invalid input for `x`, it must be more than `1.0`, but received `0.5`"


def test_pass_through_types_keep_the_value() -> None:
    assert resolve_inputs([{"id": "x", "type": "OBJECT"}], {"x": {"a": 1}}) == {"x": {"a": 1}}


def test_unknown_type_is_an_error_at_runtime() -> None:
    assert errors_of([{"id": "x", "type": "FOO"}], {"x": "1"}) == [
        ("x", "Invalid input for `x`, Invalid type: FOO, but received `1`")]


# ---------------------------------------------------------------------------------------------------------
# Required, defaults, nesting, undeclared keys, raw maps
# ---------------------------------------------------------------------------------------------------------

def test_required_defaults_to_true_and_default_fills_in() -> None:
    definitions = [{"id": "a", "type": "STRING"}, {"id": "b", "type": "INT", "defaults": 5},
                   {"id": "c", "type": "BOOLEAN", "required": False, "defaults": False},
                   {"id": "d", "type": "DURATION", "defaults": "PT1S"}]
    assert errors_of(definitions, {}) == [("a", "Invalid input for `a`, missing required input, but received `null`")]
    assert resolve_inputs(definitions, {"a": "x"}) == {"a": "x", "b": 5, "c": False, "d": "PT1S"}
    assert resolve_inputs(definitions, {"a": "x", "b": "6", "c": "true"}) == {
        "a": "x", "b": 6, "c": True, "d": "PT1S"}


def test_explicit_none_uses_the_default() -> None:
    assert resolve_inputs([{"id": "x", "type": "INT", "defaults": 3}], {"x": None}) == {"x": 3}


def test_defaults_are_coerced_and_validated_like_submitted_values() -> None:
    errors = errors_of([{"id": "x", "type": "INT", "defaults": 50, "max": 10}], {})
    assert errors == [("x", "Invalid input for `x`, it must be less than `10`, but received `50`")]


def test_default_expression_is_rendered_with_resolved_inputs() -> None:
    definitions = [{"id": "first", "type": "STRING"},
                   {"id": "second", "type": "STRING", "defaults": "{{ inputs.first }}"},
                   {"id": "when", "type": "DATETIME", "defaults": "{{ now }}"}]
    typed = resolve_inputs(definitions, {"first": "hello"}, render=fake_render,
                           context={"now": "2024-05-01T10:00:00.5Z"})
    assert typed == {"first": "hello", "second": "hello", "when": "2024-05-01T10:00:00.500Z"}


def test_default_expression_without_renderer_is_an_error() -> None:
    errors = errors_of([{"id": "x", "type": "STRING", "defaults": "{{ now() }}"}], {})
    assert errors == [("x", "Invalid input for `x`, Unable to render `defaults`: unable to render `{{ now() }}`: "
                            "no expression renderer is configured, but received `{{ now() }}`")]


def test_default_expression_render_failure() -> None:
    errors = errors_of([{"id": "x", "type": "STRING", "defaults": "{{ fail }}"}], {}, render=fake_render)
    assert errors == [("x", "Invalid input for `x`, Unable to render `defaults`: Unable to find `fail` used in the "
                            "expression, but received `{{ fail }}`")]


def test_nested_ids_and_nested_submissions() -> None:
    definitions = [{"id": "a.b", "type": "INT"}, {"id": "a.c.d", "type": "STRING", "required": False},
                   {"id": "top", "type": "STRING", "required": False}]
    assert resolve_inputs(definitions, {"a.b": "1", "a.c.d": "x"}) == {"a": {"b": 1, "c": {"d": "x"}}, "top": None}
    # a Subflow may pass the nested map itself
    assert resolve_inputs(definitions, {"a": {"b": 2, "c": {"d": "y"}}}) == {
        "a": {"b": 2, "c": {"d": "y"}}, "top": None}


def test_undeclared_keys_are_ignored() -> None:
    assert resolve_inputs([{"id": "a", "type": "STRING"}], {"a": "x", "intruder": "y"}) == {"a": "x"}


def test_legacy_name_alias() -> None:
    assert resolve_inputs([{"name": "legacy", "type": "INT"}], {"legacy": "4"}) == {"legacy": 4}


def test_raw_maps_are_kept_as_is_with_defaults_and_undeclared_keys() -> None:
    definitions = [{"id": "param", "type": "STRING"},
                   {"id": "namespace", "type": "STRING", "required": False, "defaults": "io.kestra.tests"},
                   {"id": "errorOnMissing", "type": "BOOLEAN", "required": False, "defaults": False}]
    typed = resolve_inputs(definitions, {"param": True, "flowId": "switch"}, raw=True)
    assert typed == {"flowId": "switch", "param": True, "namespace": "io.kestra.tests", "errorOnMissing": False}
    assert resolve_inputs([{"id": "n", "type": "INT"}], {"n": 1}, raw=True) == {"n": 1}
    assert errors_of([{"id": "param", "type": "STRING"}], {}, raw=True) == [
        ("param", "Invalid input for `param`, missing required input, but received `null`")]


# ---------------------------------------------------------------------------------------------------------
# dependsOn and dynamic choices
# ---------------------------------------------------------------------------------------------------------

DEPENDENT = [
    {"id": "cloud", "type": "SELECT", "values": ["AWS", "GCP"]},
    {"id": "region", "type": "SELECT", "values": ["eu-west-1", "us-east-1"],
     "dependsOn": {"inputs": ["cloud"], "condition": "{{ inputs.cloud == 'AWS' }}"}},
    {"id": "zone", "type": "STRING", "dependsOn": {"inputs": ["region"]}},
]


def test_depends_on_enables_when_condition_is_true() -> None:
    typed = resolve_inputs(DEPENDENT, {"cloud": "AWS", "region": "eu-west-1", "zone": "a"}, render=fake_render)
    assert typed == {"cloud": "AWS", "region": "eu-west-1", "zone": "a"}


def test_disabled_inputs_are_skipped_even_when_required_and_propagate() -> None:
    typed = resolve_inputs(DEPENDENT, {"cloud": "GCP", "region": "bogus"}, render=fake_render)
    assert typed == {"cloud": "GCP"}
    results = {r.id: r for r in evaluate_inputs(DEPENDENT, {"cloud": "GCP"}, render=fake_render)}
    assert results["region"].enabled is False and results["zone"].enabled is False


def test_dependencies_are_resolved_first_whatever_the_declaration_order() -> None:
    definitions = [{"id": "b", "type": "STRING", "defaults": "{{ inputs.a }}", "dependsOn": {"inputs": ["a"]}},
                   {"id": "a", "type": "STRING", "defaults": "from-a"}]
    assert resolve_inputs(definitions, {}, render=fake_render) == {"b": "from-a", "a": "from-a"}


def test_invalid_condition() -> None:
    definitions = [{"id": "a", "type": "STRING"},
                   {"id": "b", "type": "STRING", "dependsOn": {"inputs": ["a"], "condition": "{{ fail }}"}}]
    assert errors_of(definitions, {"a": "x", "b": "y"}, render=fake_render) == [
        ("b", "Invalid condition: Unable to find `fail` used in the expression")]


def test_runtime_cycle_is_reported() -> None:
    definitions = [{"id": "a", "type": "STRING", "dependsOn": {"inputs": ["b"]}},
                   {"id": "b", "type": "STRING", "dependsOn": {"inputs": ["a"]}}]
    errors = errors_of(definitions, {"a": "1", "b": "2"})
    assert errors == [("b", "Cycle dependency detected for input with id 'a': [a, b]")]


def test_select_expression_provides_values() -> None:
    definition = {"id": "env", "type": "SELECT", "expression": "{{ ['dev', 'prod'] }}"}
    assert resolve_inputs([definition], {"env": "prod"}, render=fake_render) == {"env": "prod"}
    assert errors_of([definition], {"env": "qa"}, render=fake_render) == [
        ("env", "Invalid input for `env`, it must match the values `[dev, prod]`, but received `qa`")]
    results = evaluate_inputs([definition], {"env": "prod"}, render=fake_render)
    assert results[0].definition["values"] == ["dev", "prod"]


def test_expression_must_yield_a_list() -> None:
    definition = {"id": "env", "type": "MULTISELECT", "expression": "{{ name }}"}
    errors = errors_of([definition], {"env": '["x"]'}, render=fake_render, context={"name": "text"})
    assert errors == [("env", "Invalid input for `env`, Invalid expression result. Expected a list of strings, "
                              "but received String, but received `text`")]


def test_auto_select_first() -> None:
    definitions = [{"id": "s", "type": "SELECT", "values": ["a", "b"], "autoSelectFirst": True},
                   {"id": "m", "type": "MULTISELECT", "values": ["x", "y"], "autoSelectFirst": True}]
    assert resolve_inputs(definitions, {}) == {"s": "a", "m": ["x"]}


def test_evaluate_inputs_reports_defaults_and_errors_without_raising() -> None:
    definitions = [{"id": "a", "type": "INT", "defaults": 1}, {"id": "b", "type": "INT"}]
    results = evaluate_inputs(definitions, {"b": "zz"})
    assert (results[0].value, results[0].is_default, results[0].errors) == (1, True, [])
    assert results[1].value is None and results[1].errors[0].startswith("Invalid input for `b`, Expected `INT`")


# ---------------------------------------------------------------------------------------------------------
# FILE inputs
# ---------------------------------------------------------------------------------------------------------

def test_file_upload_is_stored_under_the_execution() -> None:
    store = MemoryStore()
    typed = resolve_inputs([{"id": "f", "type": "FILE"}], {"f": InputFile("../../etc/hello.txt", b"hello")},
                           files=store, namespace="company.team", flow_id="flow", execution_id="exec1")
    uri = "kestra:///company/team/flow/executions/exec1/inputs/f/hello.txt"
    assert typed == {"f": uri}
    assert store.files == {uri: b"hello"}


def test_existing_kestra_uri_is_kept_when_it_exists() -> None:
    store = MemoryStore()
    uri = store.put_input_file("ns", "parent", "e0", "f", "data.csv", b"1")
    assert resolve_inputs([{"id": "f", "type": "FILE"}], {"f": uri}, files=store) == {"f": uri}
    missing = "kestra:///ns/parent/executions/e0/inputs/f/missing.csv"
    errors = errors_of([{"id": "f", "type": "FILE"}], {"f": missing}, files=store)
    assert errors[0][1].startswith("Invalid input for `f`, Expected `FILE` but received `" + missing)


def test_file_refuses_local_paths_and_uploads_without_store() -> None:
    errors = errors_of([{"id": "f", "type": "FILE"}], {"f": "/etc/passwd"}, files=MemoryStore())
    assert errors[0][1].startswith("Invalid input for `f`, Expected `FILE` but received `/etc/passwd` with errors:")
    errors = errors_of([{"id": "f", "type": "FILE"}], {"f": InputFile("a.txt", b"x")})
    assert "no file storage is available" in errors[0][1]


def test_file_defaults_may_point_to_namespace_files() -> None:
    definition = {"id": "f", "type": "FILE", "defaults": "nsfile:///data/seed.csv"}
    assert resolve_inputs([definition], {}) == {"f": "nsfile:///data/seed.csv"}
    # the same scheme is refused when submitted by a caller
    assert errors_of([definition], {"f": "file:///etc/passwd"})[0][0] == "f"


def test_allowed_file_extensions() -> None:
    definition = {"id": "f", "type": "FILE", "allowedFileExtensions": [".csv", "json"]}
    store = MemoryStore()
    assert resolve_inputs([definition], {"f": InputFile("a.JSON", b"{}")}, files=store, namespace="n",
                          flow_id="f", execution_id="e") == {"f": "kestra:///n/f/executions/e/inputs/f/a.JSON"}
    errors = errors_of([definition], {"f": InputFile("evil.exe", b"MZ")}, files=store)
    assert errors == [("f", "Invalid input for `f`, the file extension must be one of `[.csv, json]`, "
                            "but received `evil.exe`")]


def test_upload_for_a_non_file_input_is_refused() -> None:
    assert one_error("STRING", InputFile("a.txt", b"x")).startswith(
        "Invalid input for `x`, Expected `STRING` but received `a.txt` with errors:")


# ---------------------------------------------------------------------------------------------------------
# typed_value (resume / trigger inputs)
# ---------------------------------------------------------------------------------------------------------

def test_typed_value() -> None:
    assert typed_value("DURATION", "PT90S", {"id": "d"}) == "PT1M30S"
    assert typed_value("INT", None, {"id": "i"}) is None
    with pytest.raises(InputValidationError) as caught:
        typed_value("INT", "5", {"id": "i", "min": 10})
    assert caught.value.errors == [("i", "Invalid input for `i`, it must be more than `10`, but received `5`")]


# ---------------------------------------------------------------------------------------------------------
# Flow definitions
# ---------------------------------------------------------------------------------------------------------

def test_valid_definitions_have_no_violation() -> None:
    assert validate_definitions(INPUTS_FLOW) == []
    assert validate_definitions(DEPENDENT) == []
    assert validate_definitions(None) == []


@pytest.mark.parametrize(("definitions", "expected"), [
    ([{"id": "first_input", "type": "STRING"}, {"id": "first_input", "type": "STRING"}],
     [("inputs", "Duplicate input with name [first_input]")]),
    ([{"id": "file", "type": "FILE", "defaults": "something"}, {"id": "array", "type": "ARRAY", "itemType": "ARRAY"}],
     [("file", "no `defaults` can be set for inputs of type 'FILE'"), ("array", "`itemType` cannot be `ARRAY`")]),
    ([{"id": "array", "type": "ARRAY"}], [("array", "`itemType` must not be null")]),
    ([{"id": "wrong one"}], [("inputs[0].id", 'must match "^[a-zA-Z0-9][.a-zA-Z0-9_-]*"'),
                             ("inputs[0].type", "Invalid type: null")]),
    ([{"id": "s", "type": "SELECT"}], [("s", "one of `values` or `expression` must be set")]),
    ([{"id": "e", "type": "ENUM"}], [("e", "`values` must not be null")]),
    ([{"id": "m", "type": "MULTISELECT", "values": ["a"], "options": ["a"]}],
     [("m", "you can't define both `values` and `options`")]),
    ([{"id": "m", "type": "MULTISELECT"}], [("m", "one of `values`, `options` or `expression` must be set")]),
    ([{"id": "a", "type": "STRING", "dependsOn": {"inputs": ["ghost"]}}],
     [("inputs", "Input with id 'a' depends on a non-existent input 'ghost'.")]),
    ([{"id": "a", "type": "STRING", "dependsOn": {"inputs": ["b"]}},
      {"id": "b", "type": "STRING", "dependsOn": {"inputs": ["a"]}}],
     [("inputs", "Cycle dependency detected for input with id 'a': [a, b]"),
      ("inputs", "Cycle dependency detected for input with id 'b': [b, a]")]),
    ([{"id": "s", "type": "STRING", "prefill": "x", "defaults": "y"}],
     [("s", "`prefill` cannot be combined with `defaults`")]),
    ([{"id": "i", "type": "INT", "min": "ten"}],
     [("i", 'invalid `min` value `ten`: For input string: "ten"')]),
])
def test_definition_violations(definitions: list[dict], expected: list[tuple[str, str]]) -> None:
    assert validate_definitions(definitions) == expected


def test_unknown_type_lists_the_valid_ones() -> None:
    [(path, message)] = validate_definitions([{"id": "x", "type": "FOO"}])
    assert path == "inputs[0].type"
    assert message.startswith("Invalid type: FOO, must be one of [ARRAY, BOOL, BOOLEAN,")
    assert all(name in message for name in INPUT_TYPES)


def test_bad_validator_regex_is_a_violation() -> None:
    [(path, message)] = validate_definitions([{"id": "badValidatorSyntax", "type": "STRING", "validator": "\\"}])
    assert path == "badValidatorSyntax"
    assert message.startswith("the validator pattern `\\` is not a valid regular expression")


def test_output_definitions() -> None:
    assert validate_output_definitions([{"id": "o", "type": "FILE", "value": "{{ inputs.f }}"}]) == []
    assert validate_output_definitions([{"id": "o", "type": "STRING", "value": 1},
                                        {"id": "o", "type": "NOPE"}]) == [
        ("outputs[1].type", "Invalid type: NOPE, must be one of " + "[" + ", ".join(sorted(INPUT_TYPES)) + "]"),
        ("o", "`value` must not be null"),
        ("outputs", "Duplicate output with name [o]"),
    ]


# ---------------------------------------------------------------------------------------------------------
# Flow outputs
# ---------------------------------------------------------------------------------------------------------

def test_resolve_outputs_coerces_types() -> None:
    definitions = [{"id": "count", "type": "INT"}, {"id": "when", "type": "DATETIME"},
                   {"id": "data", "type": "JSON"}, {"id": "file", "type": "FILE"},
                   {"id": "maybe", "type": "STRING", "required": False}]
    uri = "kestra:///io/kestra/tests/inputs-small-files/executions/e/inputs/f/a.yml"
    outputs = resolve_outputs(definitions, {"count": "3", "when": "2024-01-01T00:00:00+01:00",
                                            "data": '{"k": [1]}', "file": uri})
    assert outputs == {"count": 3, "when": "2023-12-31T23:00:00Z", "data": {"k": [1]}, "file": uri, "maybe": None}


def test_resolve_outputs_errors() -> None:
    with pytest.raises(InputValidationError) as caught:
        resolve_outputs([{"id": "file", "type": "FILE"}, {"id": "n", "type": "INT"},
                         {"id": "req", "type": "STRING"}], {"file": "/tmp/x", "n": "x"})
    assert [path for path, _ in caught.value.errors] == ["file", "n", "req"]
    assert caught.value.errors[0][1].startswith("Invalid output for `file`, Expected `FILE` but received `/tmp/x`")
    assert caught.value.errors[2][1] == "Invalid output for `req`, missing required output, but received `null`"


def test_render_flow_outputs() -> None:
    definitions = [{"id": "value", "type": "STRING", "value": "{{ outputs.return.value }}"},
                   {"id": "o", "type": "FILE", "value": "{{ inputs.f }}"}]
    context = {"outputs": {"return": {"value": "hi"}}, "inputs": {"f": "kestra:///a/b/c.txt"}}
    assert render_flow_outputs(definitions, fake_render, context) == {"value": "hi", "o": "kestra:///a/b/c.txt"}
    with pytest.raises(InputValidationError) as caught:
        render_flow_outputs([{"id": "bad", "type": "STRING", "value": "{{ fail }}"},
                             {"id": "n", "type": "INT", "value": "{{ inputs.f }}"}], fake_render, context)
    assert caught.value.errors[0] == ("bad", "Invalid output for `bad`, Unable to render value: Unable to find "
                                             "`fail` used in the expression, but received `{{ fail }}`")
    assert caught.value.errors[1][0] == "n"


def test_unresolved_inputs_with_defaults_are_visible_as_null_while_rendering() -> None:
    definitions = [{"id": "a", "type": "STRING", "required": False, "defaults": "{{ inputs.b }}"},
                   {"id": "b", "type": "STRING", "defaults": "x"}]
    assert resolve_inputs(definitions, {}, render=fake_render) == {"a": None, "b": "x"}
