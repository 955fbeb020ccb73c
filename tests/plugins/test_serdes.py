"""``io.kestra.plugin.serdes``: CSV, JSON, Avro, Parquet and Excel to and from ION, on a memory platform."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.flow import FlowValidationError, parse_flow
from orchestrator.plugins.serdes._base import iter_records, java_format, java_parse
from tests.plugins.test_storage_kv_plugins import NS, Ctx


def run(body: str, ctx: Ctx) -> Any:
    parsed = parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n" + body).tasks[0]
    return parsed.plugin(parsed).run(ctx)


def put(ctx: Ctx, content: bytes | str, extension: str) -> str:
    return ctx.platform.put_file(content, extension=extension)


def records(ctx: Ctx, uri: str) -> list[Any]:
    return list(iter_records(ctx.platform.read_file(uri).decode("utf-8")))


def text(ctx: Ctx, uri: str) -> str:
    return ctx.platform.read_file(uri).decode("utf-8")


# --- CSV ------------------------------------------------------------------------------------------------

def test_csv_to_ion_header_nulls_quotes_and_skip_rows() -> None:
    ctx = Ctx()
    source = put(ctx, 'id,name,note\n1,"Smith, J","said ""hi"""\n2,\\N,"two\nlines"\n3,c,x\n', ".csv")
    out = run(f"    type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: '{source}'\n    skipRows: 1\n", ctx)
    assert out["uri"].endswith(".ion")
    assert records(ctx, out["uri"]) == [{"id": "2", "name": None, "note": "two\nlines"},
                                        {"id": "3", "name": "c", "note": "x"}]
    assert ("counter", "records", 2, None) in ctx.metrics
    out = run(f"    type: io.kestra.plugin.serdes.csv.CsvReader\n    from: '{source}'\n    header: false\n", ctx)
    assert records(ctx, out["uri"])[1] == ["1", "Smith, J", 'said "hi"']


def test_csv_to_ion_separator_charset_and_bad_lines() -> None:
    ctx = Ctx()
    source = put(ctx, "a;b\né;1\nonly\n".encode("latin-1"), ".csv")
    body = f"    type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: '{source}'\n    fieldSeparator: ';'\n" \
           "    charset: ISO-8859-1\n"
    with pytest.raises(TaskFailure, match="field count mismatch.*line 3: Expected 2, got 1"):
        run(body, ctx)
    out = run(body + "    onBadLines: WARN\n", ctx)
    assert records(ctx, out["uri"]) == [{"a": "é", "b": "1"}]
    assert any(level == "WARN" and "field count mismatch" in message for level, message in ctx.logs)
    with pytest.raises(TaskFailure, match="fieldSeparator.*single character"):
        run(f"    type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: '{source}'\n    fieldSeparator: ';;'\n", ctx)


def test_ion_to_csv_dates_nulls_and_quote_modes() -> None:
    ctx = Ctx()
    source = put(ctx, '{id:1,name:"a,b",at:2024-01-02T03:04:05.5Z,day:2024-01-02,price:12.50,rate:1.5e0,none:null}\n'
                      '{id:2,name:"x",at:2024-01-02T03:04:05+02:00,day:2024-01-03,price:3.,rate:2e10,none:true}\n',
                 ".ion")
    out = run(f"    type: io.kestra.plugin.serdes.csv.IonToCsv\n    from: '{source}'\n", ctx)
    assert out["uri"].endswith(".csv")
    assert text(ctx, out["uri"]).splitlines() == [
        "id,name,at,day,price,rate,none",
        '1,"a,b",2024-01-02T03:04:05.500Z,2024-01-02,12.50,1.5,',
        "2,x,2024-01-02T03:04:05.000+02:00,2024-01-03,3,2.0E10,true",
    ]
    out = run(f"    type: io.kestra.plugin.serdes.csv.IonToCsv\n    from: '{source}'\n    quoteMode: NON_NUMERIC\n"
              "    header: false\n    fieldSeparator: ';'\n    dateFormat: dd/MM/yyyy\n    lineDelimiter: \"\\r\\n\"\n",
              ctx)
    assert text(ctx, out["uri"]).split("\r\n")[0] == '1;"a,b";"2024-01-02T03:04:05.500Z";"02/01/2024";12.50;1.5;'
    lists = put(ctx, '["a",1]\n', ".ion")
    with pytest.raises(TaskFailure, match="Invalid data of type List with header"):
        run(f"    type: io.kestra.plugin.serdes.csv.IonToCsv\n    from: '{lists}'\n", ctx)


def test_csv_round_trip_through_ion() -> None:
    ctx = Ctx()
    original = 'city,pop\n"New York, NY",8000000\nParis,2100000\n'
    ion = run(f"    type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: '{put(ctx, original, '.csv')}'\n", ctx)
    back = run(f"    type: io.kestra.plugin.serdes.csv.IonToCsv\n    from: '{ion['uri']}'\n", ctx)
    assert text(ctx, back["uri"]) == original


def test_unknown_property_names_the_field() -> None:
    with pytest.raises(FlowValidationError, match="fieldSeperator"):
        parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n    type: io.kestra.plugin.serdes.csv.CsvToIon\n"
                   "    from: x\n    fieldSeperator: ';'\n")


# --- JSON -----------------------------------------------------------------------------------------------

def test_json_lines_and_arrays_to_ion_and_back() -> None:
    ctx = Ctx()
    lines = put(ctx, '{"id": 1, "tags": ["a"], "n": null}\n{"id": 2, "price": 1.25}\n\n', ".jsonl")
    out = run(f"    type: io.kestra.plugin.serdes.json.JsonToIon\n    from: '{lines}'\n", ctx)
    assert records(ctx, out["uri"]) == [{"id": 1, "tags": ["a"], "n": None}, {"id": 2, "price": 1.25}]
    array = put(ctx, '[{"id": 1}, {"id": 2}]', ".json")
    broken = put(ctx, '[{"id": 1},', ".json")
    with pytest.raises(TaskFailure, match="Invalid JSON at line 1.*newLine: false"):
        run(f"    type: io.kestra.plugin.serdes.json.JsonToIon\n    from: '{broken}'\n", ctx)
    out = run(f"    type: io.kestra.plugin.serdes.json.JsonReader\n    from: '{array}'\n    newLine: false\n", ctx)
    assert records(ctx, out["uri"]) == [{"id": 1}, {"id": 2}]

    ion = put(ctx, '{id:1,at:2024-05-06T07:08:09Z,day:2024-05-06,amount:10.25}\n{id:2,blob:{{aGk=}}}\n', ".ion")
    out = run(f"    type: io.kestra.plugin.serdes.json.IonToJson\n    from: '{ion}'\n", ctx)
    assert out["uri"].endswith(".jsonl")
    assert [json.loads(line) for line in text(ctx, out["uri"]).splitlines()] == [
        {"id": 1, "at": "2024-05-06T07:08:09Z", "day": "2024-05-06", "amount": 10.25}, {"id": 2, "blob": "aGk="}]
    out = run(f"    type: io.kestra.plugin.serdes.json.IonToJson\n    from: '{ion}'\n    newLine: false\n", ctx)
    assert out["uri"].endswith(".json") and len(json.loads(text(ctx, out["uri"]))) == 2


# --- Avro -----------------------------------------------------------------------------------------------

SCHEMA = json.dumps({"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"},
    {"name": "active", "type": "boolean"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "label", "type": ["null", "string"]},
]})


def test_ion_to_avro_converts_text_as_kestra_and_reads_back() -> None:
    import fastavro

    ctx = Ctx()
    ion = put(ctx, '{id:"1",active:"yes",amount:"12,5",day:"2024-01-31",at:"2024-01-31T10:00:00Z",label:"x"}\n'
                   '{id:2,active:false,amount:3.10,day:"NA",at:2024-02-01T00:00:00Z}\n', ".ion")
    body = (f"    type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: '{ion}'\n    decimalSeparator: ','\n"
            f"    schema: '{SCHEMA}'\n")
    out = run(body, ctx)
    assert out["uri"].endswith(".avro")
    rows = list(fastavro.reader(io.BytesIO(ctx.platform.read_file(out["uri"]))))
    assert rows[0] == {"id": 1, "active": True, "amount": Decimal("12.50"), "day": date(2024, 1, 31),
                       "at": datetime(2024, 1, 31, 10, tzinfo=timezone.utc), "label": "x"}
    assert rows[1]["day"] is None and rows[1]["label"] is None and rows[1]["amount"] == Decimal("3.10")

    back = run(f"    type: io.kestra.plugin.serdes.avro.AvroToIon\n    from: '{out['uri']}'\n", ctx)
    assert records(ctx, back["uri"])[0] == {"id": 1, "active": True, "amount": Decimal("12.50"),
                                            "day": date(2024, 1, 31),
                                            "at": datetime(2024, 1, 31, 10, tzinfo=timezone.utc), "label": "x"}


def test_ion_to_avro_bad_records_strict_schema_and_inference() -> None:
    import fastavro

    ctx = Ctx()
    ion = put(ctx, '{id:1,active:true,amount:1.00,at:2024-01-01T00:00:00Z}\n'
                   '{id:"two",active:true,amount:1.00,at:2024-01-01T00:00:00Z}\n', ".ion")
    body = f"    type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: '{ion}'\n    schema: '{SCHEMA}'\n"
    with pytest.raises(TaskFailure, match="record 2.*field 'id'.*`two` is not an integer"):
        run(body, ctx)
    out = run(body + "    onBadLines: SKIP\n", ctx)
    assert [r["id"] for r in fastavro.reader(io.BytesIO(ctx.platform.read_file(out["uri"])))] == [1]
    extra = put(ctx, '{id:1,active:true,amount:1.00,at:2024-01-01T00:00:00Z,other:1}\n', ".ion")
    with pytest.raises(TaskFailure, match="other are not in the schema"):
        run(f"    type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: '{extra}'\n    schema: '{SCHEMA}'\n"
            "    strictSchema: true\n", ctx)
    with pytest.raises(TaskFailure, match="Invalid value for 'schema'"):
        run(f"    type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: '{extra}'\n    schema: 'not json'\n", ctx)
    inferred = run(f"    type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: '{extra}'\n", ctx)
    reader = fastavro.reader(io.BytesIO(ctx.platform.read_file(inferred["uri"])))
    assert [f["name"] for f in reader.writer_schema["fields"]] == ["id", "active", "amount", "at", "other"]
    assert next(iter(reader))["at"] == datetime(2024, 1, 1, tzinfo=timezone.utc)


# --- Parquet --------------------------------------------------------------------------------------------

def test_ion_to_parquet_and_back() -> None:
    import pyarrow.parquet as pq

    ctx = Ctx()
    ion = put(ctx, '{id:1,active:true,amount:12.50,day:2024-01-31,at:2024-01-31T10:00:00Z,label:"x"}\n'
                   '{id:2,active:false,amount:3.10,at:2024-02-01T00:00:00Z}\n', ".ion")
    out = run(f"    type: io.kestra.plugin.serdes.parquet.IonToParquet\n    from: '{ion}'\n    schema: '{SCHEMA}'\n"
              "    compressionCodec: SNAPPY\n", ctx)
    assert out["uri"].endswith(".parquet")
    parquet = pq.ParquetFile(io.BytesIO(ctx.platform.read_file(out["uri"])))
    assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
    assert str(parquet.schema_arrow.field("amount").type) == "decimal128(10, 2)"
    back = run(f"    type: io.kestra.plugin.serdes.parquet.ParquetToIon\n    from: '{out['uri']}'\n", ctx)
    assert records(ctx, back["uri"]) == [
        {"id": 1, "active": True, "amount": Decimal("12.50"), "day": date(2024, 1, 31),
         "at": datetime(2024, 1, 31, 10, tzinfo=timezone.utc), "label": "x"},
        {"id": 2, "active": False, "amount": Decimal("3.10"), "day": None,
         "at": datetime(2024, 2, 1, tzinfo=timezone.utc), "label": None}]
    inferred = run(f"    type: io.kestra.plugin.serdes.parquet.IonToParquet\n    from: '{ion}'\n", ctx)
    table = pq.read_table(io.BytesIO(ctx.platform.read_file(inferred["uri"])))
    assert table.column("label").to_pylist() == ["x", None]


# --- Excel ----------------------------------------------------------------------------------------------

def test_ion_to_excel_and_back() -> None:
    import openpyxl

    ctx = Ctx()
    first = put(ctx, '{name:"a",qty:2,day:2024-03-04,f:"Formula:B2*2"}\n{name:"b",qty:3.5,day:null,f:"x"}\n', ".ion")
    second = put(ctx, '{k:"v"}\n', ".ion")
    out = run(f"    type: io.kestra.plugin.serdes.excel.IonToExcel\n    from:\n      Orders: '{first}'\n"
              f"      Other: '{second}'\n", ctx)
    assert out["size"] == 3 and out["uri"].endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(ctx.platform.read_file(out["uri"])))
    assert book.sheetnames == ["Orders", "Other"]
    sheet = book["Orders"]
    assert [c.value for c in sheet[1]] == ["name", "qty", "day", "f"]
    assert sheet["B2"].value == 2 and sheet["C2"].value == datetime(2024, 3, 4) and sheet["D2"].value == "=B2*2"
    assert sheet["C3"].value == "null"

    back = run(f"    type: io.kestra.plugin.serdes.excel.ExcelToIon\n    from: '{out['uri']}'\n"
               "    sheetsTitle: [Other]\n", ctx)
    assert list(back["uris"]) == ["Other"] and back["size"] == 2
    assert records(ctx, back["uris"]["Other"]) == [{"k": "v"}]
    all_sheets = run(f"    type: io.kestra.plugin.serdes.excel.ExcelToIon\n    from: '{out['uri']}'\n", ctx)
    rows = records(ctx, all_sheets["uris"]["Orders"])
    assert rows[0]["name"] == "a" and rows[0]["qty"] == 2.0
    assert rows[0]["day"] == datetime(2024, 3, 4, tzinfo=timezone.utc)
    with pytest.raises(TaskFailure, match="no sheet Missing"):
        run(f"    type: io.kestra.plugin.serdes.excel.ExcelToIon\n    from: '{out['uri']}'\n"
            "    sheetsTitle: [Missing]\n", ctx)


# --- helpers --------------------------------------------------------------------------------------------

def test_java_patterns() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert java_format(moment, "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]") == "2024-01-02T03:04:05.678Z"
    assert java_format(date(2024, 1, 2), "dd/MM/yy") == "02/01/24"
    assert java_parse("2024-01-02T03:04", "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]", timezone.utc) == datetime(
        2024, 1, 2, 3, 4, tzinfo=timezone.utc)
    assert java_parse("02/01/2024", "dd/MM/yyyy", timezone.utc) == date(2024, 1, 2)
    with pytest.raises(ValueError):
        java_parse("2024-01-02", "dd/MM/yyyy", timezone.utc)
