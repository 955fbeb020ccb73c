"""``io.kestra.plugin.serdes.csv``: CSV to ION and back.

CsvToIon reads every field as text (``\\N`` is null), one ION struct per row keyed by the header
(one list per row without header); IonToCsv writes the keys of the first struct as header and every
value through the text writer's date formats.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterator, Literal, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text

from ._base import (TextFormats, platform_of, read_records, render_bool, render_char, render_enum, render_int,
                    render_text, source_uri, write_records)

BAD_LINES = ("ERROR", "WARN", "SKIP")


def _decode(ctx: RunContext, data: bytes, charset: str) -> str:
    import codecs

    try:
        return data.decode(codecs.lookup(charset).name)
    except LookupError:
        raise TaskFailure(f"Invalid value for 'charset': unknown charset `{charset}`") from None
    except UnicodeDecodeError as exc:
        raise TaskFailure(f"Unable to read the file as {charset}: {exc}") from None


@register
class CsvToIon(CorePlugin):
    """Convert a CSV file to an ION file of records."""

    type = "io.kestra.plugin.serdes.csv.CsvToIon"
    aliases = ("io.kestra.plugin.serdes.csv.CsvReader",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        header: bool = True
        fieldSeparator: Text = ","
        textDelimiter: Text = '"'
        skipEmptyRows: bool = False
        errorOnDifferentFieldCount: Optional[bool] = None
        onBadLines: Literal["ERROR", "WARN", "SKIP"] = "ERROR"
        skipRows: int = Field(0, ge=0)
        charset: Text = "UTF-8"
        maxBufferSize: Optional[int] = None
        allowExtraCharsAfterClosingQuote: bool = False
        maxFieldSize: Optional[int] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        separator = render_char(ctx, props.get("fieldSeparator"), "fieldSeparator", ",")
        quote = render_char(ctx, props.get("textDelimiter"), "textDelimiter", '"')
        charset = render_text(ctx, props.get("charset")) or "UTF-8"
        text = _decode(ctx, platform.read_file(source_uri(ctx, props)), charset)
        header = render_bool(ctx, props.get("header"), True)
        skip_rows = render_int(ctx, props.get("skipRows"), "skipRows") or 0
        skip_empty = render_bool(ctx, props.get("skipEmptyRows"), False)
        on_bad = render_enum(ctx, props.get("onBadLines"), "onBadLines", BAD_LINES, "ERROR")
        if props.get("errorOnDifferentFieldCount") is not None and props.get("onBadLines") is None:
            on_bad = "ERROR" if render_bool(ctx, props.get("errorOnDifferentFieldCount"), False) else "SKIP"
        rows = _read_csv(text, separator, quote)
        headers: list[str] | None = None
        skipped = 0
        out: list[Any] = []
        for line_number, fields in rows:
            if not fields:
                if skip_empty:
                    continue
                fields = [""]  # an empty line is a row of one empty field
            if header and headers is None:
                headers = fields
                continue
            if skipped < skip_rows:
                skipped += 1
                continue
            values = [None if value == "\\N" else value for value in fields]
            if header:
                assert headers is not None
                if len(values) != len(headers):
                    message = (f"Bad line encountered (field count mismatch) at line {line_number}: "
                               f"Expected {len(headers)}, got {len(values)} fields.")
                    if on_bad == "ERROR":
                        raise TaskFailure(message)
                    if on_bad == "WARN":
                        ctx.log("WARN", message)
                    continue
                out.append(dict(zip(headers, values)))
            else:
                out.append(values)
        data, count = write_records(out)
        ctx.metric("counter", "records", count)
        return {"uri": platform.put_file(data, extension=".ion")}


def _read_csv(text: str, separator: str, quote: str) -> Iterator[tuple[int, list[str]]]:
    """``(starting line number, fields)`` of each CSV record (RFC 4180; quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, quotechar=quote, doublequote=True,
                        strict=False)
    line = 1
    try:
        for fields in reader:
            yield line, fields
            line = reader.line_num + 1
    except csv.Error as exc:
        raise TaskFailure(f"Unable to read the CSV file at line {line}: {exc}") from None


_NUMERIC = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")


@register
class IonToCsv(CorePlugin):
    """Convert an ION file of records to CSV."""

    type = "io.kestra.plugin.serdes.csv.IonToCsv"
    aliases = ("io.kestra.plugin.serdes.csv.CsvWriter",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        header: bool = True
        fieldSeparator: Text = ","
        textDelimiter: Text = '"'
        lineDelimiter: Text = "\n"
        alwaysDelimitText: bool = False
        quoteMode: Optional[Literal["ALWAYS", "REQUIRED", "NON_NUMERIC"]] = None
        charset: Text = "UTF-8"
        dateFormat: Optional[Text] = None
        timeFormat: Optional[Text] = None
        dateTimeFormat: Optional[Text] = None
        timeZoneId: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        formats = TextFormats(ctx, props)
        header = render_bool(ctx, props.get("header"), True)
        separator = render_char(ctx, props.get("fieldSeparator"), "fieldSeparator", ",")
        quote = render_char(ctx, props.get("textDelimiter"), "textDelimiter", '"')
        line_end = ctx.render_string(props["lineDelimiter"]) if props.get("lineDelimiter") is not None else "\n"
        if line_end not in ("\n", "\r\n", "\r"):
            raise TaskFailure(f"Invalid value for 'lineDelimiter': `{line_end!r}` must be \\n, \\r\\n or \\r")
        if props.get("quoteMode") is not None:
            mode = render_enum(ctx, props.get("quoteMode"), "quoteMode", ("ALWAYS", "REQUIRED", "NON_NUMERIC"),
                               "REQUIRED")
        else:
            mode = "ALWAYS" if render_bool(ctx, props.get("alwaysDelimitText"), False) else "REQUIRED"
        charset = render_text(ctx, props.get("charset")) or "UTF-8"

        def field(value: str | None) -> str:
            if value is None:  # null: an empty unquoted field
                return ""
            needs = mode == "ALWAYS" or (mode == "NON_NUMERIC" and not _NUMERIC.match(value)) or any(
                char in value for char in (separator, quote, "\n", "\r"))
            return quote + value.replace(quote, quote + quote) + quote if needs else value

        lines: list[str] = []
        count = 0
        first = True
        for record in read_records(ctx, source_uri(ctx, props)):
            if isinstance(record, list):
                if header:
                    raise TaskFailure("Invalid data of type List with header")
                lines.append(separator.join(field(formats.convert(v)) for v in record) + line_end)
            elif isinstance(record, dict):
                if first and header:
                    lines.append(separator.join(field(str(k)) for k in record) + line_end)
                lines.append(separator.join(field(formats.convert(v)) for v in record.values()) + line_end)
                first = False
            count += 1
        ctx.metric("counter", "records", count)
        try:
            data = "".join(lines).encode(charset)
        except LookupError:
            raise TaskFailure(f"Invalid value for 'charset': unknown charset `{charset}`") from None
        return {"uri": platform.put_file(data, extension=".csv")}
