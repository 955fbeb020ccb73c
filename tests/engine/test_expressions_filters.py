"""Pebble and Kestra filters (spec §9.7): expected values from the Pebble/Kestra behaviour."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from orchestrator.engine.expressions import ExpressionError, render, render_string

from .test_expressions import make_context

CTX = make_context()


def _ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [str(case[0])[:70] for case in cases]


STRING_CASES = [
    ("{{ 'hello world' | abbreviate(8) }}", "hello..."),
    ("{{ 'hello' | abbreviate(10) }}", "hello"),
    ("{{ 'hello world' | abbreviate(2) }}", "he"),
    ("{{ 'abc' | abbreviate(2) }}", "abc"),
    ("{{ null | abbreviate(3) }}", None),
    ("{{ '  hello world' | capitalize }}", "  Hello world"),
    ("{{ 'hello big world' | title }}", "Hello Big World"),
    ("{{ 'hello  \tbig' | title }}", "Hello  \tBig"),
    ("{{ 'Hello' | upper }}", "HELLO"),
    ("{{ 'Hello' | lower }}", "hello"),
    ("{{ 42 | upper }}", "42"),
    ("{{ null | upper }}", None),
    ("{{ '  x y  ' | trim }}", "x y"),
    ("{{ 'a-b-c' | replace({'-': '+'}) }}", "a+b+c"),
    ("{{ 'abc' | replace({'a': '1', 'b': '2'}) }}", "12c"),
    ("{{ 'a1b22' | replace({'\\d+': '#'}, regexp=true) }}", "a#b#"),
    ("{{ 'John Smith' | replace({'(\\w+) (\\w+)': '$2 $1'}, regexp=true) }}", "Smith John"),
    ("{{ 'a.b' | replace({'.': '-'}) }}", "a-b"),
    ("{{ 'a.b' | replace({'.': '-'}, regexp=true) }}", "---"),
    ("{{ ['a-1', 'b-2'] | replace({'-': ''}) }}", ["a1", "b2"]),
    ("{{ {'k': 'a-1', 'n': 3} | replace({'-': ''}) }}", {"k": "a1", "n": "3"}),
    ("{{ 'a,b,,c,,' | split(',') }}", ["a", "b", "", "c"]),
    ("{{ 'a,b,,c,,' | split(',', 2) }}", ["a", "b,,c,,"]),
    ("{{ 'a,b,,c,,' | split(',', -1) }}", ["a", "b", "", "c", "", ""]),
    ("{{ 'a1b2c' | split('\\d') }}", ["a", "b", "c"]),
    ("{{ 'a.b.c' | split('\\.') }}", ["a", "b", "c"]),
    ("{{ 'a.b.c' | split('.') }}", []),
    ("{{ '' | split(',') }}", [""]),
    ("{{ 'abc' | split('') }}", ["a", "b", "c"]),
    ("{{ 'hello' | slice(1, 3) }}", "el"),
    ("{{ 'hello' | slice(2) }}", "llo"),
    ("{{ [1, 2, 3, 4] | slice(1) }}", [2, 3, 4]),
    ("{{ [1, 2, 3, 4] | slice(0, 2) }}", [1, 2]),
    ("{{ 'a.b.c' | substringBefore('.') }}", "a"),
    ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
    ("{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
    ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
    ("{{ 'abc' | substringBefore('z') }}", "abc"),
    ("{{ 'abc' | substringAfter('z') }}", ""),
    ("{{ 'abc' | substringAfterLast('c') }}", ""),
    ("{{ 'abc' | startsWith('ab') }}", True),
    ("{{ 'abc' | startsWith('bc') }}", False),
    ("{{ 'abc' | endsWith('bc') }}", True),
    ("{{ 'Héllo Wörld_x  y' | slugify }}", "hello-world-x-y"),
    ("{{ ' --My Flow!! ' | slugify }}", "my-flow"),
    ("{{ 'a b&c=d/é~*' | urlencode }}", "a+b%26c%3Dd%2F%C3%A9%7E*"),
    ("{{ 'a+b%26c' | urldecode }}", "a b&c"),
    ("{{ 'hello' | base64encode }}", "aGVsbG8="),
    ("{{ 'aGVsbG8=' | base64decode }}", "hello"),
    ("{{ 'héllo' | base64encode | base64decode }}", "héllo"),
    ("{{ 'hello' | md5 }}", "5d41402abc4b2a76b9719d911017c592"),
    ("{{ 'hello' | sha1 }}", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
    ("{{ 'hello' | sha256 }}", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
    ("{{ 'hello' | sha512 }}", "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7ac"
                               "c6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"),
    ("{{ \"it's\" | escapeChar('single') }}", "it\\'s"),
    ("{{ 'say \"hi\"' | escapeChar('double') }}", 'say \\"hi\\"'),
    ("{{ \"it's\" | escapeChar('shell') }}", "it'\\''s"),
    ("{{ ['a\\'b'] | escapeChar('single') }}", ["a\\'b"]),
    ("{{ 'a\nb' | indent(2) }}", "a\n  b"),
    ("{{ 'a\nb' | indent(2, '-') }}", "a\n--b"),
    ("{{ 'a\nb' | nindent(2) }}", "\n  a\n  b"),
    ("{{ '' | indent(4) }}", ""),
    ("{{ '%s is %d years and %.2f' | format('Bob', 42, 1.5) }}", "Bob is 42 years and 1.50"),
    ("{{ '%05d|%-4s|%x|%b|%%' | format(42, 'ab', 255, true) }}", "00042|ab  |ff|true|%"),
    ("{{ '%,d' | format(1234567) }}", "1,234,567"),
    ("{{ 'a\nb\r\nc' | nl2br }}", "a<br />b<br />c"),
    ("{{ '<a href=\"x\">&' | escape }}", "&lt;a href=&quot;x&quot;&gt;&amp;"),
    ("{{ '<b>' | raw }}", "<b>"),
]

COLLECTION_CASES = [
    ("{{ [3, 1, 2] | first }}", 3),
    ("{{ [3, 1, 2] | last }}", 2),
    ("{{ [] | first }}", None),
    ("{{ 'abc' | first }}", "a"),
    ("{{ 'abc' | last }}", "c"),
    ("{{ [3, 1, 2] | length }}", 3),
    ("{{ 'hello' | length }}", 5),
    ("{{ {'a': 1, 'b': 2} | length }}", 2),
    ("{{ null | length }}", 0),
    ("{{ [1, 2, 3] | join(', ') }}", "1, 2, 3"),
    ("{{ [1, 2, 3] | join }}", "123"),
    ("{{ ['a', null, true] | join('-') }}", "a-null-true"),
    ("{{ [3, 1, 2] | sort }}", [1, 2, 3]),
    ("{{ ['b', 'c', 'a'] | sort }}", ["a", "b", "c"]),
    ("{{ [3, 1, 2] | rsort }}", [3, 2, 1]),
    ("{{ [3, 1, 2] | reverse }}", [2, 1, 3]),
    ("{{ [1, 2] | merge([3]) }}", [1, 2, 3]),
    ("{{ {'a': 1, 'b': 1} | merge({'b': 2}) }}", {"a": 1, "b": 2}),
    ("{{ null | merge([1]) }}", [1]),
    ("{{ [1, 2, 3, 4, 5] | chunk(2) }}", [[1, 2], [3, 4], [5]]),
    ("{{ [] | chunk(2) }}", []),
    ("{{ [1, 2, 1, 3, 2] | distinct }}", [1, 2, 3]),
    ("{{ ['a', 'b', 'a'] | distinct }}", ["a", "b"]),
    ("{{ [[1, 2], [3], 4] | flatten }}", [1, 2, 3, 4]),
    ("{{ [[1, [2]], []] | flatten }}", [1, [2]]),
    ("{{ null | default('d') }}", "d"),
    ("{{ '' | default('d') }}", "d"),
    ("{{ '  ' | default('d') }}", "d"),
    ("{{ [] | default('d') }}", "d"),
    ("{{ {} | default('d') }}", "d"),
    ("{{ 0 | default('d') }}", 0),
    ("{{ false | default('d') }}", False),
    ("{{ 'x' | default('d') }}", "x"),
    ("{{ missing | default('d') }}", "d"),
    ("{{ missing | default(default='named') }}", "named"),
    ("{{ inputs.missing.deep | default('d') }}", "d"),
    ("{{ inputs.name | default('d') }}", "World"),
    ("{{ -5 | abs }}", 5),
    ("{{ -5.5 | abs }}", 5.5),
    ("{{ 3 | abs }}", 3),
    ("{{ {'a': 1, 'b': 2} | keys }}", ["a", "b"]),
    ("{{ [5, 6] | keys }}", [0, 1]),
    ("{{ {'a': 1, 'b': 2} | values }}", [1, 2]),
]

DATA_CASES = [
    ("{{ {'a': 1, 'b': null} | toJson }}", '{"a":1}'),
    ("{{ {'a': 1, 'b': null} | toJson(includeNulls=true) }}", '{"a":1,"b":null}'),
    ("{{ [1, 'x', true, null, 1.5] | toJson }}", '[1,"x",true,null,1.5]'),
    ("{{ 'string' | toJson }}", '"string"'),
    ("{{ 1 | toJson }}", "1"),
    ("{{ null | toJson }}", "null"),
    ("{{ {'empty_object': {}} | toJson }}", '{"empty_object":{}}'),
    ("{{ inputs.map | json }}", '{"a":1,"b":"two"}'),
    ("{{ execution.startDate | toJson }}", '"2024-05-02T10:15:30.123456Z"'),
    ("{{ {'é': 'ü\"'} | toJson }}", '{"é":"ü\\""}'),
    ("{{ {'a': 1, 'b': [1, 2]} | toIon }}", "{a:1,b:[1,2]}"),
    ("{{ {'my-key': 'v', 'n': null, 'f': 1.5} | toIon }}", "{'my-key':\"v\",n:null,f:1.5e0}"),
    ("{{ null | toIon }}", "null"),
    ("{{ {'a': 1, 'b': [1, 2]} | yaml }}", "a: 1\nb:\n  - 1\n  - 2\n"),
    ("{{ {'s': 'text', 'n': null} | yaml }}", "s: text\nn: null\n"),
    ("{{ 'plain' | yaml }}", "plain\n"),
    ("{{ null | yaml }}", "null"),
    ("{{ [1, 2, 3] | jq('.[0]') | first }}", 1),
    ("{{ [1, 2, 3] | jq('.[0]') }}", [1]),
    ("{{ {'test': [1, 2, 3]} | jq('.test[0]') }}", [1]),
    ("{{ {'second': [1, 2, 3]} | jq('.second[]') }}", [1, 2, 3]),
    ("{{ outputs.fetch.body | jq('.items[0].id') | first }}", 1),
    ("{{ outputs.fetch.body | jq('.items | length') | first }}", 2),
    ("{{ outputs.fetch.body | jq('[.items[].id]') | first }}", [1, 2]),
    ("{{ {'a': {'b': 'c'}} | jq('.a') | first }}", {"b": "c"}),
    ("{{ {'a': null} | jq('.a') }}", [None]),
    ("{{ {'a': 1} | jq('.missing') }}", [None]),
    ("{{ {'n': 1.5} | jq('.n * 2') | first }}", 3.0),
    ("{{ null | jq('.') }}", None),
    ("{{ {'d': execution.startDate} | jq('.d') | first }}", "2024-05-02T10:15:30.123456Z"),
    ("{% set object = {'object': {'key': 'value'}} | jq('.object') %}{{ object[0].key }}", "value"),
    ("{{ 1 | className }}", "java.lang.Integer"),
    ("{{ 3000000000 | className }}", "java.lang.Long"),
    ("{{ 'x' | className }}", "java.lang.String"),
    ("{{ 1.5 | className }}", "java.lang.Double"),
    ("{{ true | className }}", "java.lang.Boolean"),
    ("{{ {} | className }}", "java.util.LinkedHashMap"),
    ("{{ [] | className }}", "java.util.ArrayList"),
    ("{{ null | className }}", None),
    ("{{ '42' | number }}", 42),
    ("{{ '42.5' | number }}", 42.5),
    ("{{ '42' | number('INT') }}", 42),
    ("{{ '42' | number('LONG') }}", 42),
    ("{{ '42' | number('DOUBLE') }}", 42.0),
    ("{{ '42.25' | number('FLOAT') }}", 42.25),
    ("{{ '42.10' | number('BIGDECIMAL') }}", Decimal("42.10")),
    ("{{ '0x1F' | number }}", 31),
    ("{{ ('12' | number) + 1 }}", 13),
    ("{{ 42 | string }}", "42"),
    ("{{ 1.5 | string }}", "1.5"),
    ("{{ '007' | string }}", "7"),
    ("{{ 1234567.891 | numberFormat('#,##0.00') }}", "1,234,567.89"),
    ("{{ 0.5 | numberFormat('#.##') }}", ".5"),
    ("{{ 1.232654 | numberFormat('#.##') }}", "1.23"),
    ("{{ 0.125 | numberFormat('0.00') }}", "0.12"),
    ("{{ 0.135 | numberFormat('0.00') }}", "0.14"),
    ("{{ 0.256 | numberFormat('0.0%') }}", "25.6%"),
    ("{{ 7 | numberFormat('000') }}", "007"),
    ("{{ -1234.5 | numberFormat('#,##0.0') }}", "-1,234.5"),
    ("{{ 1234.5 | numberFormat('$#,##0.00') }}", "$1,234.50"),
    ("{{ 12345 | numberFormat('0.##E0') }}", "1.23E4"),
    ("{{ 1234567.891 | numberFormat }}", "1,234,567.891"),
]


@pytest.mark.parametrize("template, expected", STRING_CASES + COLLECTION_CASES + DATA_CASES,
                         ids=_ids(STRING_CASES + COLLECTION_CASES + DATA_CASES))
def test_filters(template: str, expected: Any) -> None:
    result = render(template, CTX)
    assert result == expected
    if expected is None or isinstance(expected, bool):
        assert result is expected


TEXT_OUTPUT_CASES = [
    ("{{ [3, 1, 2] | sort }}", "[1,2,3]"),
    ("{{ 'abc' | first }}", "a"),
    ("{{ {'a': 1} | keys }}", '["a"]'),
    ("{{ null | upper }}", ""),
    ("{{ outputs.fetch.body | jq('.items[0]') }}", '[{"id":1}]'),
    ("{{ 1.0 | abs }}", "1.0"),
    ("{{ inputs.name | upper | lower | capitalize }}", "World"),
    ("{{ inputs.tags | join(',') | upper }}", "X,Y"),
    ("{{ inputs.list | sort | first }}", "1"),
    ("{{ inputs.list | length > 2 }}", "true"),
]


@pytest.mark.parametrize("template, expected", TEXT_OUTPUT_CASES, ids=_ids(TEXT_OUTPUT_CASES))
def test_filters_as_text(template: str, expected: str) -> None:
    assert render_string(template, CTX) == expected


FILTER_ERROR_CASES = [
    ("{{ [1] | chunk }}", "'chunk' filter expects an argument 'size'."),
    ("{{ 'x' | chunk(2) }}", "'chunk' filter can only be applied to List"),
    ("{{ 1 | keys }}", "'keys' filter can only be applied to List, Map, Array"),
    ("{{ [1] | values }}", "'values' filter can only be applied to Map"),
    ("{{ 'x' | replace }}", "The argument 'replace_pairs' is required."),
    ("{{ 'x' | split }}", "missing delimiter parameter in split filter"),
    ("{{ 'x' | escapeChar('other') }}", "either 'single', 'double', or 'shell'"),
    ("{{ 'x' | escapeChar }}", "expects an argument 'type'"),
    ("{{ 'a\nb' | indent }}", "expects an integer as argument 'amount'"),
    ("{{ 'a\nb' | indent(-1) }}", "positive integer"),
    ("{{ 'hello' | slice(3, 2) }}", "toIndex must be greater than fromIndex"),
    ("{{ 'hello' | slice(0, 9) }}", "toIndex must be smaller than input size"),
    ("{{ 1 | slice(0, 1) }}", "Slice filter can only be applied to String, List and array inputs"),
    ("{{ 1 | join }}", "either a collection or an array"),
    ("{{ 1 | flatten }}", "can only be applied to lists"),
    ("{{ 1 | sort }}", "Unsupported input type for sort filter"),
    ("{{ [1, 'a'] | sort }}", "comparable"),
    ("{{ 'x' | merge(1) }}", "not a Map/List/Array"),
    ("{{ 'not json' | jq('.') }}", "Unable to parse jq value"),
    ("{{ {} | jq('.[') }}", "Failed to resolve JQ expression"),
    ("{{ {} | jq }}", "expects an argument 'expression'"),
    ("{{ 12 | number }}", "'number' filter can only be applied to String"),
    ("{{ 'abc' | number }}", "is not a valid number"),
    ("{{ 'abc' | string }}", "'string' filter expects a valid number"),
    ("{{ '!!' | base64decode }}", "Unable to base64-decode"),
    ("{{ 'x' | abs }}", "can only be applied to numbers"),
    ("{{ 'x' | numberFormat('0.0') }}", "numberFormat can only format numbers"),
    ("{{ '%d' | format('x') }}", "%d"),
    ("{{ '%s %s' | format('x') }}", "has no matching argument"),
    ("{{ 'abc' | abbreviate(-1) }}", "must be greater than zero"),
    ("{{ '' | first }}", "empty string"),
    ("{{ {'a': 1} | first }}", "can not be applied to a map"),
    ("{{ 'x' | replace({'(': ''}, regexp=true) }}", "Invalid regular expression"),
]


@pytest.mark.parametrize("template, message", FILTER_ERROR_CASES, ids=_ids(FILTER_ERROR_CASES))
def test_filter_errors(template: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        render(template, CTX)
    assert message in str(caught.value)


def test_filters_do_not_mutate_context_values() -> None:
    context = make_context()
    render("{{ inputs.list | sort }}{{ inputs.list | reverse }}{{ inputs.list + 9 }}", context)
    assert context["inputs"]["list"] == [3, 1, 2]
