"""Pebble/Kestra functions (spec §9.6) and the date filters with Java patterns."""
from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator.engine.expressions import ExpressionError, render, render_string

from .test_expressions import FakeServices, make_context

ZONED = datetime(2013, 9, 8, 16, 19, 12, 123456, tzinfo=timezone(timedelta(hours=1)))
DATE_CTX = make_context(
    zoned=ZONED,
    instant=ZONED.astimezone(timezone.utc),
    date=datetime(2013, 9, 8, 15, 19, 12, tzinfo=timezone.utc),
    local=ZONED.replace(tzinfo=None),
    day=date(2024, 2, 29),
    paris=datetime(2024, 3, 30, 12, 0, tzinfo=ZoneInfo("Europe/Paris")),
    iso="2024-05-02T10:15:30.123456Z",
    epoch=1378653552,
)


def _ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [str(case[0])[:70] for case in cases]


DATE_CASES = [
    # Kestra's DateFilterTest
    ("{{ date | date(format='iso', timeZone='Europe/Paris') }}", "2013-09-08T17:19:12.000000+02:00"),
    ("{{ instant | date(format=\"iso_sec\", timeZone=\"Europe/Paris\") }}", "2013-09-08T17:19:12+02:00"),
    ("{{ zoned | date(format=\"iso\", timeZone=\"Europe/Paris\") }}", "2013-09-08T17:19:12.123456+02:00"),
    ("{{ local | date(format=\"yyyy-MM-dd HH:mm:ss.SSSSSSXXX\", timeZone=\"Europe/Paris\") }}",
     "2013-09-08 16:19:12.123456+02:00"),
    ("{{ local | date(format=\"yyyy-MM-dd HH:mm:ss.SSSSSSXXX\", timeZone=\"UTC\") }}",
     "2013-09-08 16:19:12.123456Z"),
    ("{{ \"July 24, 2001\" | date(\"yyyy-MM-dd\", existingFormat=\"MMMM dd, yyyy\") }}", "2001-07-24"),
    ("{{ \"2013-09-08T17:19:12+02:00\" | date(timeZone=\"Europe/Paris\") }}", "2013-09-08T17:19:12.000000+02:00"),
    ("{{ \"2013-09-08T17:19:12\" | date(timeZone=\"Europe/Paris\") }}", "2013-09-08T17:19:12.000000+02:00"),
    ("{{ \"2013-09-08\" | date(timeZone=\"Europe/Paris\") }}", "2013-09-08T00:00:00.000000+02:00"),
    ("{{ 'Tue, 08 Feb 2022 19:38:26 GMT' | date(existingFormat='rfc_1123_date_time', timeZone=\"Europe/Paris\") }}",
     "2022-02-08T20:38:26.000000+01:00"),
    ("{{ zoned | dateAdd(-1,\"DAYS\",timeZone=\"Europe/Paris\")}}", "2013-09-07T17:19:12.123456+02:00"),
    # named formats
    ("{{ zoned | date('iso_sec', 'UTC') }}", "2013-09-08T15:19:12Z"),
    ("{{ zoned | date('sql') }}", "2013-09-08 15:19:12.123456"),
    ("{{ zoned | date('sql_seq') }}", "2013-09-08 15:19:12"),
    ("{{ zoned | date('iso_date_time', timeZone='Europe/Paris') }}", "2013-09-08T17:19:12.123456+02:00[Europe/Paris]"),
    ("{{ zoned | date('iso_local_date') }}", "2013-09-08"),
    ("{{ zoned | date('iso_local_time') }}", "15:19:12.123456"),
    ("{{ zoned | date('iso_local_date_time') }}", "2013-09-08T15:19:12.123456"),
    ("{{ zoned | date('iso_instant', timeZone='Europe/Paris') }}", "2013-09-08T15:19:12.123456Z"),
    ("{{ date | date('iso_instant') }}", "2013-09-08T15:19:12Z"),
    ("{{ zoned | date('iso_date', timeZone='+01:00') }}", "2013-09-08+01:00"),
    ("{{ zoned | date('iso_time', timeZone='+01:00') }}", "16:19:12.123456+01:00"),
    ("{{ zoned | date('iso_offset_time', timeZone='-05:30') }}", "09:49:12.123456-05:30"),
    ("{{ zoned | date('iso_ordinal_date') }}", "2013-251Z"),
    ("{{ zoned | date('iso_week_date') }}", "2013-W36-7Z"),
    ("{{ zoned | date('rfc_1123_date_time') }}", "Sun, 8 Sep 2013 15:19:12 GMT"),
    ("{{ zoned | date('rfc_1123_date_time', timeZone='Europe/Paris') }}", "Sun, 8 Sep 2013 17:19:12 +0200"),
    ("{{ zoned | date('medium') }}", "Sep 8, 2013, 3:19:12 PM"),
    ("{{ zoned | date('short') }}", "9/8/13, 3:19 PM"),
    ("{{ zoned | date('long', timeZone='Europe/Paris') }}", "September 8, 2013 at 5:19:12 PM CEST"),
    # Java patterns
    ("{{ zoned | date('yyyy-MM-dd') }}", "2013-09-08"),
    ("{{ zoned | date(\"yyyy-MM-dd'T'HH:mm'Z'\") }}", "2013-09-08T15:19Z"),
    ("{{ zoned | date(\"dd/MM/yy HH'h'mm\") }}", "08/09/13 15h19"),
    ("{{ zoned | date(\"'It''s' yyyy\") }}", "It's 2013"),
    ("{{ zoned | date('EEE EEEE MMM MMMM', timeZone='Europe/Paris') }}", "Sun Sunday Sep September"),
    ("{{ zoned | date('h:mm a K k') }}", "3:19 PM 3 15"),
    ("{{ zoned | date('D w W e Q QQQ QQQQ') }}", "251 37 2 1 3 Q3 3rd quarter"),
    ("{{ zoned | date('SSS SSSSSSSSS') }}", "123 123456000"),
    ("{{ zoned | date('XXX xx Z ZZZZZ O OOOO', timeZone='Asia/Kolkata') }}",
     "+05:30 +0530 +0530 +05:30 GMT+5:30 GMT+05:30"),
    ("{{ zoned | date('X XX XXX x Z', timeZone='UTC') }}", "Z Z Z +00 +0000"),
    ("{{ zoned | date('VV z', timeZone='America/New_York') }}", "America/New_York EDT"),
    ("{{ zoned | date('yyyy[-MM]') }}", "2013-09"),
    ("{{ iso | date('yyyy-MM-dd HH:mm') }}", "2024-05-02 10:15"),
    ("{{ execution.startDate | date('yyyy-MM-dd') }}", "2024-05-02"),
    ("{{ taskrun.startDate | date('HH:mm:ss.SSS') }}", "10:15:31.500"),
    ("{{ epoch | date('iso_instant') }}", "2013-09-08T15:19:12Z"),
    ("{{ day | date('yyyy-MM-dd HH:mm') }}", "2024-02-29 00:00"),
    ("{{ '20240102' | date('dd/MM/yyyy', existingFormat='yyyyMMdd') }}", "02/01/2024"),
    ("{{ '10/03/2024 2:05 PM' | date('iso_sec', existingFormat='dd/MM/yyyy h:mm a') }}", "2024-03-10T14:05:00Z"),
    ("{{ '2024-03-10 14:05:00+0200' | date('iso_sec', existingFormat='yyyy-MM-dd HH:mm:ssZ') }}",
     "2024-03-10T12:05:00Z"),
    ("{{ trigger.date ?? execution.startDate | date('yyyy-MM-dd') }}", "2024-05-01"),
    ("{{ inputs.nothing ?? execution.startDate | date('yyyy-MM-dd') }}", "2024-05-02"),
    ("{{ null | date('yyyy') }}", None),
    # dateAdd
    ("{{ zoned | dateAdd(1, 'HOURS', 'HH:mm') }}", "16:19"),
    ("{{ zoned | dateAdd(90, 'MINUTES', 'HH:mm') }}", "16:49"),
    ("{{ zoned | dateAdd(2, 'WEEKS', 'yyyy-MM-dd') }}", "2013-09-22"),
    ("{{ '2024-01-31' | dateAdd(1, 'MONTHS', 'yyyy-MM-dd') }}", "2024-02-29"),
    ("{{ '2024-02-29' | dateAdd(1, 'YEARS', 'yyyy-MM-dd') }}", "2025-02-28"),
    ("{{ iso | dateAdd(-30, 'SECONDS', 'HH:mm:ss') }}", "10:15:00"),
    ("{{ iso | dateAdd(500, 'MILLIS', 'ss.SSS') }}", "30.623"),
    ("{{ paris | dateAdd(1, 'DAYS', 'yyyy-MM-dd HH:mm', timeZone='Europe/Paris') }}", "2024-03-31 12:00"),
    ("{{ paris | dateAdd(24, 'HOURS', 'yyyy-MM-dd HH:mm', timeZone='Europe/Paris') }}", "2024-03-31 13:00"),
    # timestamps
    ("{{ zoned | timestamp(timeZone=\"Europe/Paris\") }}", 1378653552),
    ("{{ zoned | timestampMilli(timeZone=\"Europe/Paris\") }}", 1378653552123),
    ("{{ zoned | timestampMicro }}", 1378653552123456),
    ("{{ zoned | timestampNano(timeZone=\"Europe/Paris\") }}", 1378653552123456000),
    ("{{ '1970-01-01T00:00:10Z' | timestamp }}", 10),
    ("{{ '2013-09-08 17:19' | timestamp(existingFormat='yyyy-MM-dd HH:mm', timeZone='Europe/Paris') }}", 1378653540),
    ("{{ (zoned | timestamp) > (zoned | dateAdd(-1, 'DAYS') | timestamp) }}", True),
]


@pytest.mark.parametrize("template, expected", DATE_CASES, ids=_ids(DATE_CASES))
def test_date_filters(template: str, expected: Any) -> None:
    assert render(template, DATE_CTX) == expected


DATE_ERROR_CASES = [
    ("{{ 'not a date' | date('yyyy') }}", "could not be parsed"),
    ("{{ zoned | date('yyyy', timeZone='Mars/Olympus') }}", "Unknown time-zone ID: Mars/Olympus"),
    ("{{ zoned | date('yyyy {') }}", "reserved character"),
    ("{{ zoned | date('yyyy bb') }}", "Unknown pattern letter: b"),
    ("{{ zoned | date(\"yyyy'\") }}", "incomplete string literal"),
    ("{{ zoned | dateAdd(1, 'FORTNIGHTS') }}", "ChronoUnit.FORTNIGHTS"),
    ("{{ zoned | dateAdd('x', 'DAYS') }}", "integer 'amount'"),
    ("{{ 'July 2001' | date('yyyy', existingFormat='MMMM dd, yyyy') }}", "could not be parsed"),
    ("{{ true | date }}", "Unable to convert"),
    ("{{ [1] | timestamp }}", "Unable to convert"),
]


@pytest.mark.parametrize("template, message", DATE_ERROR_CASES, ids=_ids(DATE_ERROR_CASES))
def test_date_errors(template: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        render(template, DATE_CTX)
    assert message in str(caught.value)


def test_now() -> None:
    context = make_context()
    iso = render("{{ now() }}", context)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})", iso)
    today_utc = datetime.now(timezone.utc).date().isoformat()
    assert render("{{ now(format='iso_local_date', timeZone='UTC') }}", context) in (
        today_utc, (datetime.now(timezone.utc) + timedelta(seconds=1)).date().isoformat())
    lisbon = render("{{ now(timeZone=\"Europe/Lisbon\") }}", context)
    assert lisbon[:10] == datetime.now(ZoneInfo("Europe/Lisbon")).date().isoformat()
    assert render("{{ now('yyyy') }}", context) == str(datetime.now(timezone.utc).year)
    first, second = render("{{ now() }}", context), render("{{ now() }}", context)
    assert first <= second  # never cached as a constant


# --- functions backed by services ----------------------------------------------------------------

CTX = make_context()

SERVICE_CASES = [
    ("{{ secret('API_KEY') }}", "s3cr3t"),
    ("{{ json(secret('my_secret')).secretKey }}", "secretValue"),
    ("{{ fromJson(secret('my_secret')).secretKey }}", "secretValue"),
    ("{{ kv('my-key').field }}", "kv-field"),
    ("{{ kv('plain') }}", "text"),
    ("{{ kv('my-key', 'company.team').field }}", "kv-field"),
    ("{{ kv('nope', errorOnMissing=false) }}", None),
    ("{{ kv('nope', 'company.team', false) ?? 'default' }}", "default"),
    ("{{ read('kestra:///a/b.txt') }}", "content of kestra:///a/b.txt"),
    ("{{ read(inputs.name) }}", "content of World"),
    ("{{ fileSize('kestra:///f.txt') }}", 12),
    ("{{ fileExists('kestra:///f.txt') }}", True),
    ("{{ fileExists('kestra:///missing.txt') }}", False),
    ("{{ isFileEmpty('kestra:///empty.txt') }}", True),
    ("{{ isFileEmpty('kestra:///full.txt') }}", False),
    ("{{ fileURI('scripts/run.py') }}", "kestra:///company/team/_files/scripts/run.py"),
    ("{{ errorLogs()[0].message }}", "Task failure"),
    ("{{ errorLogs() | length }}", 1),
    ("{{ tasksWithState('failed') }}", [{"taskId": "b", "state": "FAILED"},
                                        {"taskId": "c", "state": "FAILED", "value": "v1"}]),
    ("{{ tasksWithState('SUCCESS') | length }}", 1),
]


@pytest.mark.parametrize("template, expected", SERVICE_CASES, ids=_ids(SERVICE_CASES))
def test_service_functions(template: str, expected: Any) -> None:
    assert render(template, CTX) == expected


def test_service_function_errors() -> None:
    with pytest.raises(ExpressionError, match="Cannot find secret for key 'NOPE'"):
        render("{{ secret('NOPE') }}", CTX)
    with pytest.raises(ExpressionError, match="The key 'nope' does not exist in the namespace 'company.team'"):
        render("{{ kv('nope') }}", CTX)
    with pytest.raises(ExpressionError, match="File not found"):
        render("{{ read('kestra:///missing.txt') }}", CTX)
    bare = make_context()
    del bare["__services__"]
    for template, name in (("{{ secret('A') }}", "secret"), ("{{ kv('a') }}", "kv"), ("{{ read('x') }}", "read"),
                           ("{{ fileSize('x') }}", "fileSize"), ("{{ fileExists('x') }}", "fileExists"),
                           ("{{ errorLogs() }}", "errorLogs"), ("{{ isFileEmpty('x') }}", "isFileEmpty")):
        with pytest.raises(ExpressionError, match=f"The '{name}' function is not available"):
            render(template, bare)
    partial = make_context(__services__=object())
    with pytest.raises(ExpressionError, match="not available"):
        render("{{ secret('A') }}", partial)


def test_tasks_with_state_prefers_the_service() -> None:
    class Services(FakeServices):
        def tasks_with_state(self, state: str) -> list[dict[str, Any]]:
            return [{"taskId": "from-service", "state": state}]

    assert render("{{ tasksWithState('FAILED') }}", make_context(__services__=Services())) == [
        {"taskId": "from-service", "state": "FAILED"}]
    no_tasks = make_context(__services__=object())
    del no_tasks["tasks"]
    with pytest.raises(ExpressionError, match="not available"):
        render("{{ tasksWithState('FAILED') }}", no_tasks)


# --- render() / renderOnce() --------------------------------------------------------------------

RENDER_CTX = make_context(vars={
    "first": "1", "second": "{{ vars.first }}", "third": "{{ vars.second }}",
    "fourth": "{{ render(vars.third, recursive=false) }}",
    "map": {"third": "{{ vars.third }}"}, "list": ["{{ vars.third }}"],
    "raw": "{% raw %}{{ vars.first }}{% endraw %}", "broken": "{{ nope }}",
})

RENDER_CASES = [
    ("{{ vars.third }}", "{{ vars.second }}"),
    ("{{ render(vars.third, recursive=false) }}", "{{ vars.first }}"),
    ("{{ renderOnce(vars.third) }}", "{{ vars.first }}"),
    ("{{ render(vars.third) }}", "1"),
    ("{{ render(vars.fourth) }}", "1"),
    ("{{ vars.map }}", '{"third":"{{ vars.third }}"}'),
    ("{{ render(vars.map, recursive=false) }}", '{"third":"{{ vars.second }}"}'),
    ("{{ render(vars.map) }}", '{"third":"1"}'),
    ("{{ render(vars.list) }}", '["1"]'),
    ("{{ render(vars.raw) }}", "{{ vars.first }}"),
    ("{{ render('plain text') }}", "plain text"),
    ("{{ render('{{ inputs.count + 1 }}') }}", "8"),
    ("{{ render(\"{{ '\" ~ inputs.name ~ \"' | upper }}\") }}", "WORLD"),
]


@pytest.mark.parametrize("template, expected", RENDER_CASES, ids=_ids(RENDER_CASES))
def test_render_functions(template: str, expected: str) -> None:
    assert render_string(template, RENDER_CTX) == expected


def test_render_function_errors() -> None:
    with pytest.raises(ExpressionError, match="Unable to find `nope`"):
        render_string("{{ render(vars.broken) }}", RENDER_CTX)
    loop = make_context(vars={"first": "{{ vars.second }}", "second": "{{ vars.first }}"})
    with pytest.raises(ExpressionError, match="Too many rendering attempts"):
        render_string("{{ render(vars.first) }}", loop)
    with pytest.raises(ExpressionError, match="recursive' with type boolean"):
        render_string("{{ render(vars.first, recursive='yes') }}", RENDER_CTX)
    with pytest.raises(ExpressionError, match="expects an argument 'template'"):
        render_string("{{ render(null) }}", RENDER_CTX)


# --- data functions -----------------------------------------------------------------------------

DATA_CASES = [
    ("{{ fromJson('{\"a\": [1, 2]}').a[1] }}", 2),
    ("{{ json('[1, 2, 3]') | length }}", 3),
    ("{{ fromJson(taskrun.value).key }}", "k1"),
    ("{{ fromJson(null) }}", None),
    ("{{ fromJson('true') }}", True),
    ("{{ yaml('a: 1\nb: [x, y]') }}", {"a": 1, "b": ["x", "y"]}),
    ("{{ yaml('- 1\n- 2')[1] }}", 2),
    ("{{ fromIon('{a:1, b:\"x\", c:[true, null]}') }}", {"a": 1, "b": "x", "c": [True, None]}),
    ("{{ fromIon('{\\'my-key\\':1.5e0}') }}", {"my-key": 1.5}),
    ("{{ fromIon('1 2 3', allRows=true) }}", [1, 2, 3]),
    ("{{ fromIon('1 2 3') }}", 1),
    ("{{ fromIon('{a: 2024-01-02T03:04:05Z}').a | date('yyyy-MM-dd HH:mm') }}", "2024-01-02 03:04"),
    ("{{ fromIon({'a': 1} | toIon).a }}", 1),
    ("{{ max(1, 5, 3) }}", 5),
    ("{{ max(1.5, 1) }}", 1.5),
    ("{{ min(4, 2, 8) }}", 2),
    ("{{ min('b', 'a') }}", "a"),
    ("{{ range(1, 5) }}", [1, 2, 3, 4, 5]),
    ("{{ range(0, 10, 3) }}", [0, 3, 6, 9]),
    ("{{ range(5, 1, -2) }}", [5, 3, 1]),
    ("{{ range('a', 'e', 2) }}", ["a", "c", "e"]),
    ("{{ printContext().flow.id }}", "hello"),
    ("{{ fetchContext().inputs.name }}", "World"),
    ("{{ fetchContext() contains '__services__' }}", False),
    ("{{ 'abc'.length() }}", 3),
    ("{{ inputs.name.toUpperCase() }}", "WORLD"),
    ("{{ inputs.text.substring(0, 5) }}", "Hello"),
    ("{{ inputs.text.startsWith('Hell') }}", True),
    ("{{ inputs.text.split(' ') }}", ["Hello", "World"]),
    ("{{ inputs.list.size() }}", 3),
    ("{{ inputs.list.contains(1) }}", True),
    ("{{ inputs.list.get(0) }}", 3),
    ("{{ inputs.map.keySet() }}", ["a", "b", "c"]),
    ("{{ inputs.map.containsKey('b') }}", True),
    ("{{ inputs.map.get('zz') }}", None),
]


@pytest.mark.parametrize("template, expected", DATA_CASES, ids=_ids(DATA_CASES))
def test_data_functions(template: str, expected: Any) -> None:
    assert render(template, CTX) == expected


FUNCTION_ERROR_CASES = [
    ("{{ fromJson('{bad') }}", "Invalid JSON given to fromJson"),
    ("{{ fromJson(1) }}", "with type string"),
    ("{{ yaml('a: [') }}", "Invalid YAML"),
    ("{{ fromIon('{a:') }}", "Invalid Ion"),
    ("{{ range(1, 5, 0) }}", "must be different than 0"),
    ("{{ range(1, 'a') }}", "Number or String with a length of 1"),
    ("{{ randomInt(5, 1) }}", "upper is less than lower"),
    ("{{ randomInt(1.5, 3) }}", "of type Long"),
    ("{{ nanoId(length=5000) }}", "must be lower than: 1000"),
    ("{{ tasksWithState() }}", "expects an argument 'state'"),
    ("{{ currentEachOutput() }}", "with type map"),
    ("{{ encrypt('bad key!', 'x') }}", "Invalid encryption key"),
    ("{{ decrypt('" + base64.b64encode(b"k" * 32).decode() + "', 'AAAA') }}", "Unable to decrypt"),
    ("{{ encrypt(null, 'x') }}", "expects two arguments 'key' and 'plaintext'"),
    ("{{ block('nope') }}", "Block [nope] does not exist"),
    ("{{ parent() }}", "template inheritance"),
    ("{{ now(timeZone='Nowhere/City') }}", "Unknown time-zone ID"),
]


@pytest.mark.parametrize("template, message", FUNCTION_ERROR_CASES, ids=_ids(FUNCTION_ERROR_CASES))
def test_function_errors(template: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        render(template, CTX)
    assert message in str(caught.value)


# --- identifiers and randomness ----------------------------------------------------------------

def test_identifier_functions() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        render("{{ uuid() }}", CTX))
    assert re.fullmatch(r"[0-9A-Za-z]{22}", render("{{ id() }}", CTX))
    ksuid = render("{{ ksuid() }}", CTX)
    assert re.fullmatch(r"[0-9A-Za-z]{27}", ksuid)
    assert render("{{ uuid() }}", CTX) != render("{{ uuid() }}", CTX)
    assert re.fullmatch(r"[0-9A-Za-z_-]{21}", render("{{ nanoId() }}", CTX))
    assert re.fullmatch(r"[ab]{10}", render("{{ nanoId(10, 'ab') }}", CTX))
    assert len(render("{{ nanoId(length=4) }}", CTX)) == 4


def test_random_functions() -> None:
    values = {render("{{ randomInt(1, 4) }}", CTX) for _ in range(200)}
    assert values <= {1, 2, 3} and len(values) > 1
    assert render("{{ randomInt(7, 7) }}", CTX) == 7
    port = render("{{ randomPort() }}", CTX)
    assert isinstance(port, int) and 0 < port < 65536


def test_encrypt_decrypt_round_trip_in_kestra_format() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    context = make_context(key=key)
    encrypted = render("{{ encrypt(key, 'my secret value') }}", context)
    raw = base64.b64decode(encrypted)
    assert len(raw) == 12 + len("my secret value") + 16  # IV + cipher text + GCM tag
    assert render("{{ decrypt(key, '" + encrypted + "') }}", context) == "my secret value"
    assert render("{{ decrypt(key, encrypt(key, 'x')) }}", context) == "x"
    assert render("{{ encrypt(key, 'x') }}", context) != render("{{ encrypt(key, 'x') }}", context)

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    iv = b"\x01" * 12
    java_style = base64.b64encode(iv + AESGCM(bytes(range(32))).encrypt(iv, b"from java", None)).decode()
    assert render("{{ decrypt(key, '" + java_style + "') }}", context) == "from java"


def test_default_time_zone_is_configurable() -> None:
    from orchestrator.engine import expressions

    template = "at {{ '2024-01-01T12:00:00Z' | date('HH:mm XXX') }}"
    assert render(template, CTX) == "at 12:00 Z"
    expressions.set_default_time_zone("Europe/Paris")
    try:
        assert render(template, CTX) == "at 13:00 +01:00"
        assert render("{{ '2024-01-01T12:00:00Z' | date('HH:mm', timeZone='UTC') }}", CTX) == "12:00"
    finally:
        expressions.set_default_time_zone(None)
    assert render(template, CTX) == "at 12:00 Z"
