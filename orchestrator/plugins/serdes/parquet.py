"""``io.kestra.plugin.serdes.parquet``: Parquet (pyarrow) to ION and back.

IonToParquet converts records with the Avro converter (the flow's Avro ``schema``, or an inferred one),
as Kestra's AvroParquetWriter does, then writes them with the Arrow schema matching that Avro schema.
"""
from __future__ import annotations

import io
from typing import Any, Literal

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text

from .avro import AvroConverterProps, converted_records, plain
from ._base import platform_of, render_enum, render_int, source_uri, write_records

CODECS = {"UNCOMPRESSED": "none", "SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd"}


def arrow_type(schema: Any) -> tuple[Any, bool]:
    """``(Arrow type, nullable)`` of an Avro type."""
    import pyarrow as pa

    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        nullable = len(branches) < len(schema)
        if len(branches) != 1:
            return pa.string(), nullable  # a union of several types: Arrow has no direct match
        kind, _ = arrow_type(branches[0])
        return kind, nullable
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema.get("type"), schema.get("logicalType")
    if isinstance(kind, (list, dict)):
        return arrow_type(kind)
    if logical == "date":
        return pa.date32(), False
    if logical == "timestamp-millis":
        return pa.timestamp("ms", tz="UTC"), False
    if logical == "timestamp-micros":
        return pa.timestamp("us", tz="UTC"), False
    if logical == "local-timestamp-millis":
        return pa.timestamp("ms"), False
    if logical == "local-timestamp-micros":
        return pa.timestamp("us"), False
    if logical == "time-millis":
        return pa.time32("ms"), False
    if logical == "time-micros":
        return pa.time64("us"), False
    if logical == "decimal":
        return pa.decimal128(int(schema.get("precision", 38)), int(schema.get("scale", 0))), False
    simple = {"null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(),
              "float": pa.float32(), "double": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
              "enum": pa.string(), "fixed": pa.binary()}
    if kind in simple:
        return simple[kind], kind == "null"
    if kind == "array":
        item, _ = arrow_type(schema["items"])
        return pa.list_(item), False
    if kind == "map":
        value, _ = arrow_type(schema["values"])
        return pa.map_(pa.string(), value), False
    if kind == "record":
        return pa.struct([pa.field(f["name"], *arrow_type(f["type"])) for f in schema["fields"]]), False
    raise TaskFailure(f"Invalid value for 'schema': unsupported Avro type {kind}")


@register
class IonToParquet(CorePlugin):
    """Convert ION records to a Parquet file."""

    type = "io.kestra.plugin.serdes.parquet.IonToParquet"
    aliases = ("io.kestra.plugin.serdes.parquet.ParquetWriter",)
    kind = RUNNABLE

    class Props(AvroConverterProps):
        compressionCodec: Literal["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"] = "GZIP"
        parquetVersion: Literal["V1", "V2"] = "V2"
        rowGroupSize: int = Field(134217728, ge=1)
        pageSize: int = Field(1048576, ge=1)
        dictionaryPageSize: int = Field(1048576, ge=1)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        props = self.task.props
        schema, records = converted_records(ctx, props)
        codec = render_enum(ctx, props.get("compressionCodec"), "compressionCodec", CODECS, "GZIP")
        version = render_enum(ctx, props.get("parquetVersion"), "parquetVersion", ("V1", "V2"), "V2")
        row_group_bytes = render_int(ctx, props.get("rowGroupSize"), "rowGroupSize") or 134217728
        arrow_schema = pa.schema([pa.field(f["name"], *arrow_type(f["type"])) for f in schema["fields"]])
        try:
            table = pa.Table.from_pylist(records, schema=arrow_schema)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise TaskFailure(f"Unable to convert the records to Parquet: {exc}") from None
        # Kestra's rowGroupSize is bytes; Arrow counts rows: estimate rows per group from the table's size
        per_row = max(1, table.nbytes // max(1, table.num_rows))
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression=CODECS[codec], version="2.6" if version == "V2" else "1.0",
                       row_group_size=max(1, row_group_bytes // per_row),
                       data_page_size=render_int(ctx, props.get("pageSize"), "pageSize") or 1048576,
                       dictionary_pagesize_limit=render_int(ctx, props.get("dictionaryPageSize"),
                                                            "dictionaryPageSize") or 1048576)
        ctx.metric("counter", "records", len(records))
        return {"uri": platform_of(ctx).put_file(buffer.getvalue(), extension=".parquet")}


@register
class ParquetToIon(CorePlugin):
    """Convert a Parquet file to ION records."""

    type = "io.kestra.plugin.serdes.parquet.ParquetToIon"
    aliases = ("io.kestra.plugin.serdes.parquet.ParquetReader",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        platform = platform_of(ctx)
        data = platform.read_file(source_uri(ctx, self.task.props))
        try:
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise TaskFailure(f"Unable to read the Parquet file: {exc}") from None
        out, count = write_records(plain(row) for row in rows)
        ctx.metric("counter", "records", count)
        return {"uri": platform.put_file(out, extension=".ion")}
