"""``io.kestra.plugin.serdes.avro``: Avro (fastavro) to ION and back, and the record converter that
IonToParquet shares.

IonToAvro converts each ION record to the Avro ``schema`` as Kestra's AvroConverter does: text is parsed
into the declared type (``trueValues``/``falseValues``, ``nullValues``, the date patterns, the decimal
separator), fields absent from a record are null, ``strictSchema`` refuses fields the schema does not
declare, and ``onBadLines`` (ERROR, WARN, SKIP) says what a record that cannot be converted does.
Without a ``schema`` one is inferred from the first ``numberOfRowsToScan`` records.
"""
from __future__ import annotations

import io
import json
import uuid
from datetime import date, datetime, time, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Literal, Optional, Union

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text

from ._base import (java_parse, platform_of, read_records, render_bool, render_char, render_enum, render_int,
                    render_text, render_text_list, render_zone, source_uri, write_records)

TRUE_VALUES = ["t", "true", "enabled", "1", "on", "yes"]
FALSE_VALUES = ["f", "false", "disabled", "0", "off", "no", ""]
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "1.#IND", "1.#QNAN", "NA", "n/a",
               "nan", "null"]


class AvroConverterProps(Props):
    """The conversion properties of IonToAvro and IonToParquet (Kestra's AbstractAvroConverter)."""

    from_: Text = Field(alias="from")
    schema_: Optional[Union[Text, dict[str, Any]]] = Field(None, alias="schema")
    numberOfRowsToScan: int = Field(100, ge=1)
    trueValues: Optional[Union[list[Text], Text]] = None
    falseValues: Optional[Union[list[Text], Text]] = None
    nullValues: Optional[Union[list[Text], Text]] = None
    dateFormat: Optional[Text] = None
    timeFormat: Optional[Text] = None
    datetimeFormat: Optional[Text] = None
    decimalSeparator: Text = "."
    strictSchema: bool = False
    inferAllFields: bool = False
    timeZoneId: Optional[Text] = None
    onBadLines: Literal["ERROR", "WARN", "SKIP"] = "ERROR"


class BadRecord(ValueError):
    pass


class AvroConverter:
    """ION values → values of an Avro schema (as fastavro writes them)."""

    def __init__(self, ctx: RunContext, props: dict[str, Any]):
        def values(name: str, default: list[str]) -> list[str]:
            return render_text_list(ctx, props[name]) if props.get(name) is not None else list(default)

        self.true_values = [v.lower() for v in values("trueValues", TRUE_VALUES)]
        self.false_values = [v.lower() for v in values("falseValues", FALSE_VALUES)]
        self.null_values = values("nullValues", NULL_VALUES)
        self.date_format = render_text(ctx, props.get("dateFormat")) or "yyyy-MM-dd[XXX]"
        self.time_format = render_text(ctx, props.get("timeFormat")) or "HH:mm[:ss][.SSSSSS][XXX]"
        self.datetime_format = render_text(ctx, props.get("datetimeFormat")) or "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]"
        self.decimal_separator = render_char(ctx, props.get("decimalSeparator"), "decimalSeparator", ".")
        self.strict = render_bool(ctx, props.get("strictSchema"), False)
        self.infer_all = render_bool(ctx, props.get("inferAllFields"), False)
        self.zone: tzinfo = render_zone(ctx, props.get("timeZoneId"))

    # -- records ---------------------------------------------------------------------------------------

    def record(self, schema: dict[str, Any], row: Any) -> dict[str, Any]:
        fields = schema["fields"]
        if isinstance(row, list):
            if self.strict and len(row) > len(fields):
                raise BadRecord(f"{len(row)} values for the {len(fields)} fields of the schema")
            row = {field["name"]: (row[i] if i < len(row) else None) for i, field in enumerate(fields)}
        if not isinstance(row, dict):
            raise BadRecord(f"a record or a list is expected, got {type(row).__name__}")
        if self.strict:
            extra = [key for key in row if key not in {field["name"] for field in fields}]
            if extra:
                raise BadRecord(f"fields {', '.join(extra)} are not in the schema (strictSchema is true)")
        out: dict[str, Any] = {}
        for field in fields:
            try:
                out[field["name"]] = self.value(field["type"], row.get(field["name"]))
            except BadRecord as exc:
                raise BadRecord(f"field '{field['name']}': {exc}") from None
        return out

    def value(self, schema: Any, value: Any) -> Any:
        if isinstance(schema, list):
            return self.union(schema, value)
        if isinstance(schema, str):
            schema = {"type": schema}
        kind = schema.get("type")
        if isinstance(kind, (list, dict)):
            return self.value(kind, value)
        logical = schema.get("logicalType")
        if value is None:
            if kind == "null":
                return None
            raise BadRecord(f"null is not allowed for type {kind}")
        if kind == "null":
            if isinstance(value, str) and value in self.null_values:
                return None
            raise BadRecord(f"`{value}` is not null")
        if logical == "date":
            return self.to_date(value)
        if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
            moment = self.to_datetime(value)
            return moment.replace(tzinfo=None) if logical.startswith("local") else moment
        if logical in ("time-millis", "time-micros"):
            return self.to_time(value)
        if logical == "decimal":
            return self.to_decimal(value, int(schema.get("scale", 0)))
        if logical == "uuid":
            return str(uuid.UUID(str(value)))
        if kind == "boolean":
            return self.to_bool(value)
        if kind in ("int", "long"):
            return self.to_int(value)
        if kind in ("float", "double"):
            return self.to_float(value)
        if kind == "string":
            if isinstance(value, (dict, list)):
                return json.dumps(value, default=str)
            if isinstance(value, bool):
                return "true" if value else "false"
            return value.isoformat() if isinstance(value, (date, time)) else str(value)
        if kind in ("bytes", "fixed"):
            return value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8")
        if kind == "enum":
            if str(value) not in schema.get("symbols", []):
                raise BadRecord(f"`{value}` is not one of the enum symbols {schema.get('symbols')}")
            return str(value)
        if kind == "array":
            if not isinstance(value, list):
                raise BadRecord(f"a list is expected, got `{value}`")
            return [self.value(schema["items"], item) for item in value]
        if kind == "map":
            if not isinstance(value, dict):
                raise BadRecord(f"a map is expected, got `{value}`")
            return {str(k): self.value(schema["values"], v) for k, v in value.items()}
        if kind == "record":
            return self.record(schema, value)
        raise BadRecord(f"unsupported Avro type {kind}")

    def union(self, branches: list[Any], value: Any) -> Any:
        nullable = any(b == "null" or (isinstance(b, dict) and b.get("type") == "null") for b in branches)
        if nullable and (value is None or (isinstance(value, str) and value in self.null_values
                                           and not self._text_branch(branches))):
            return None
        errors = []
        for branch in branches:
            if branch == "null":
                continue
            try:
                return self.value(branch, value)
            except (BadRecord, ValueError) as exc:
                errors.append(str(exc))
        raise BadRecord("; ".join(errors) or f"`{value}` matches no branch of the union")

    @staticmethod
    def _text_branch(branches: list[Any]) -> bool:
        """A nullable string keeps its empty text: only a non-text branch reads ``nullValues`` as null."""
        return any(b == "string" or (isinstance(b, dict) and b.get("type") == "string"
                                     and not b.get("logicalType")) for b in branches)

    # -- scalars ---------------------------------------------------------------------------------------

    def to_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in self.true_values:
            return True
        if text in self.false_values:
            return False
        raise BadRecord(f"`{value}` is not a boolean (trueValues/falseValues)")

    def to_int(self, value: Any) -> int:
        if isinstance(value, bool):
            raise BadRecord(f"`{value}` is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, (float, Decimal)) and value == int(value):
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise BadRecord(f"`{value}` is not an integer") from None

    def to_float(self, value: Any) -> float:
        if isinstance(value, bool):
            raise BadRecord(f"`{value}` is not a number")
        if isinstance(value, (int, float, Decimal)):
            return float(value)
        try:
            return float(str(value).strip().replace(self.decimal_separator, "."))
        except ValueError:
            raise BadRecord(f"`{value}` is not a number") from None

    def to_decimal(self, value: Any, scale: int) -> Decimal:
        try:
            number = value if isinstance(value, Decimal) else Decimal(
                str(value).strip().replace(self.decimal_separator, "."))
        except InvalidOperation:
            raise BadRecord(f"`{value}` is not a decimal") from None
        return number.quantize(Decimal(1).scaleb(-scale))

    def to_date(self, value: Any) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        parsed = self._parse(str(value), self.date_format)
        return parsed.date() if isinstance(parsed, datetime) else parsed  # type: ignore[return-value]

    def to_datetime(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=self.zone)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=self.zone)
        parsed = self._parse(str(value), self.datetime_format)
        if not isinstance(parsed, datetime):
            raise BadRecord(f"`{value}` is not a date-time")
        return parsed

    def to_time(self, value: Any) -> time:
        if isinstance(value, datetime):
            return value.timetz().replace(tzinfo=None)
        if isinstance(value, time):
            return value.replace(tzinfo=None)
        parsed = self._parse(str(value), self.time_format)
        if not isinstance(parsed, time):
            raise BadRecord(f"`{value}` is not a time")
        return parsed.replace(tzinfo=None)

    def _parse(self, text: str, pattern: str) -> Any:
        try:
            return java_parse(text, pattern, self.zone)
        except (ValueError, TaskFailure) as exc:
            raise BadRecord(str(exc)) from None


# --- schemas --------------------------------------------------------------------------------------------

def parse_schema(ctx: RunContext, props: dict[str, Any]) -> dict[str, Any] | None:
    raw = props.get("schema")
    if raw is None:
        return None
    rendered = ctx.render(raw) if not isinstance(raw, dict) else raw
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError as exc:
            raise TaskFailure(f"Invalid value for 'schema': not a JSON Avro schema ({exc})") from None
    if not isinstance(rendered, dict) or rendered.get("type") != "record" or not isinstance(rendered.get("fields"),
                                                                                              list):
        raise TaskFailure("Invalid value for 'schema': an Avro schema of type record with fields is expected")
    try:
        import fastavro

        fastavro.parse_schema(rendered)
    except Exception as exc:  # noqa: BLE001 - fastavro raises several types for a bad schema
        raise TaskFailure(f"Invalid value for 'schema': {exc}") from None
    return rendered


def infer_schema(records: Iterable[Any], name: str = "Record") -> dict[str, Any]:
    """A record schema from sample records: every field nullable, its type from the values seen."""
    seen: dict[str, list[Any]] = {}
    for record in records:
        if isinstance(record, dict):
            for key, value in record.items():
                seen.setdefault(str(key), []).append(value)
        elif isinstance(record, list):
            for index, value in enumerate(record):
                seen.setdefault(f"col{index}", []).append(value)
    return {"type": "record", "name": name,
            "fields": [{"name": key, "type": ["null", _infer(values, key)], "default": None}
                       for key, values in seen.items()]}


def _infer(values: list[Any], name: str) -> Any:
    present = [v for v in values if v is not None]
    kinds = {_kind(v) for v in present}
    if not kinds:
        return "string"
    if kinds == {"long", "double"}:
        return "double"
    if len(kinds) > 1:
        return "string"
    kind = kinds.pop()
    if kind == "record":
        nested = infer_schema(present, name=_avro_name(name))
        return {"type": "record", "name": nested["name"], "fields": nested["fields"]}
    if kind == "array":
        items = [item for value in present for item in value]
        return {"type": "array", "items": ["null", _infer(items, name + "_item")]}
    if kind == "timestamp":
        return {"type": "long", "logicalType": "timestamp-millis"}
    if kind == "date":
        return {"type": "int", "logicalType": "date"}
    if kind == "time":
        return {"type": "int", "logicalType": "time-millis"}
    return kind


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, (float, Decimal)):
        return "double"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, dict):
        return "record"
    if isinstance(value, list):
        return "array"
    return "string"


def _avro_name(name: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name) or "Record"
    return cleaned if not cleaned[0].isdigit() else "_" + cleaned


def converted_records(ctx: RunContext, props: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(schema, records)`` of an ION file converted to the flow's schema (or the inferred one)."""
    records = list(read_records(ctx, source_uri(ctx, props)))
    schema = parse_schema(ctx, props)
    if schema is None:
        rows = render_int(ctx, props.get("numberOfRowsToScan"), "numberOfRowsToScan") or 100
        schema = infer_schema(records[:rows])
    converter = AvroConverter(ctx, props)
    on_bad = render_enum(ctx, props.get("onBadLines"), "onBadLines", ("ERROR", "WARN", "SKIP"), "ERROR")
    out: list[dict[str, Any]] = []
    for index, record in enumerate(records, start=1):
        try:
            out.append(converter.record(schema, record))
        except (BadRecord, ValueError) as exc:
            message = f"Unable to convert record {index} to the Avro schema: {exc}"
            if on_bad == "ERROR":
                raise TaskFailure(message) from None
            if on_bad == "WARN":
                ctx.log("WARN", message)
    return schema, out


@register
class IonToAvro(CorePlugin):
    """Convert ION records to an Avro data file."""

    type = "io.kestra.plugin.serdes.avro.IonToAvro"
    aliases = ("io.kestra.plugin.serdes.avro.AvroWriter",)
    kind = RUNNABLE

    class Props(AvroConverterProps):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import fastavro

        schema, records = converted_records(ctx, self.task.props)
        buffer = io.BytesIO()
        try:
            fastavro.writer(buffer, fastavro.parse_schema(schema), records)
        except (ValueError, TypeError) as exc:
            raise TaskFailure(f"Unable to write the Avro file: {exc}") from None
        ctx.metric("counter", "records", len(records))
        return {"uri": platform_of(ctx).put_file(buffer.getvalue(), extension=".avro")}


def plain(value: Any) -> Any:
    """Avro/Parquet values → values the ION writer knows (UUIDs as text, map entries as a struct)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # Arrow's map entries
            return {str(k): plain(v) for k, v in value}
        return [plain(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


@register
class AvroToIon(CorePlugin):
    """Convert an Avro data file to ION records."""

    type = "io.kestra.plugin.serdes.avro.AvroToIon"
    aliases = ("io.kestra.plugin.serdes.avro.AvroReader",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import fastavro

        platform = platform_of(ctx)
        data = platform.read_file(source_uri(ctx, self.task.props))
        try:
            records = [plain(record) for record in fastavro.reader(io.BytesIO(data))]
        except (ValueError, EOFError, TypeError) as exc:
            raise TaskFailure(f"Unable to read the Avro file: {exc}") from None
        out, count = write_records(records)
        ctx.metric("counter", "records", count)
        return {"uri": platform.put_file(out, extension=".ion")}
