"""``io.kestra.plugin.serdes.excel``: Excel workbooks (openpyxl, ``.xlsx``) to ION and back.

ExcelToIon writes one ION file per selected sheet (``uris`` maps sheet title → URI; ``size`` counts the
rows); IonToExcel writes one sheet (``from`` a URI) or one sheet per entry (``from`` a map of sheet
title → URI). A text starting with ``Formula:`` is written as a formula, as in Kestra.
"""
from __future__ import annotations

import io
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Literal, Optional, Union

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text

from ._base import (TextFormats, platform_of, read_records, render_bool, render_enum, render_int, render_text,
                    render_text_list, source_uri, write_records)

VALUE_RENDERS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
DATE_RENDERS = ("SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE")
_EXCEL_EPOCH = datetime(1899, 12, 30)


def _serial(value: datetime | date) -> float:
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    moment = moment.replace(tzinfo=None)
    delta = moment - _EXCEL_EPOCH
    return delta.days + delta.seconds / 86400 + delta.microseconds / 86400e6


@register
class ExcelToIon(CorePlugin):
    """Convert the sheets of an Excel workbook to ION files."""

    type = "io.kestra.plugin.serdes.excel.ExcelToIon"
    aliases = ("io.kestra.plugin.serdes.excel.ExcelReader",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        sheetsTitle: Optional[Union[list[Text], Text]] = None
        charset: Text = "UTF-8"
        valueRender: Literal["FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"] = "UNFORMATTED_VALUE"
        dateTimeRender: Literal["SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE"] = "UNFORMATTED_VALUE"
        header: bool = True
        skipEmptyRows: bool = False
        skipRows: int = Field(0, ge=0)

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import openpyxl

        props = self.task.props
        platform = platform_of(ctx)
        data = platform.read_file(source_uri(ctx, props))
        value_render = render_enum(ctx, props.get("valueRender"), "valueRender", VALUE_RENDERS, "UNFORMATTED_VALUE")
        date_render = render_enum(ctx, props.get("dateTimeRender"), "dateTimeRender", DATE_RENDERS,
                                  "UNFORMATTED_VALUE")
        header = render_bool(ctx, props.get("header"), True)
        skip_empty = render_bool(ctx, props.get("skipEmptyRows"), False)
        skip_rows = render_int(ctx, props.get("skipRows"), "skipRows") or 0
        wanted = render_text_list(ctx, props.get("sheetsTitle"))
        try:
            # formulas are read as written for FORMULA, else their cached values (as Kestra reads them)
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=value_render != "FORMULA")
        except Exception as exc:  # noqa: BLE001 - openpyxl raises zipfile, KeyError, InvalidFileException...
            raise TaskFailure(f"Unable to read the Excel file: {exc}") from None
        missing = [title for title in wanted if title not in workbook.sheetnames]
        if missing:
            raise TaskFailure(f"Invalid value for 'sheetsTitle': no sheet {', '.join(missing)} in the workbook "
                              f"(sheets: {', '.join(workbook.sheetnames)})")
        ctx.metric("counter", "sheets", len(workbook.sheetnames))
        uris: dict[str, str] = {}
        total = skipped = 0
        for sheet in workbook.worksheets:
            if wanted and sheet.title not in wanted:
                continue
            rows: list[list[Any]] = []
            for row in sheet.iter_rows():
                if skipped < skip_rows:  # counted over the workbook, as Kestra does
                    skipped += 1
                    continue
                values = [self._cell(cell, value_render, date_render) for cell in row]
                if skip_empty:
                    values = [v for v in values if v is not None]
                else:
                    values = ["" if v is None else v for v in values]
                rows.append(values)
            total += len(rows)
            if header and rows:
                names = [str(v) for v in rows.pop(0)]
                records: list[Any] = [{name: (r[i] if i < len(r) else None) for i, name in enumerate(names)}
                                      for r in rows]
            else:
                records = rows
            content, _ = write_records(records)
            uris[sheet.title] = platform.put_file(content, extension=".ion")
        workbook.close()
        return {"uris": uris, "size": total}

    @staticmethod
    def _cell(cell: Any, value_render: str, date_render: str) -> Any:
        value = cell.value
        if value is None:
            return None
        if isinstance(value, (datetime, date, time)):
            if date_render == "SERIAL_NUMBER" and not isinstance(value, time):
                return _serial(value)
            if date_render == "FORMATTED_STRING":
                return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
            if isinstance(value, datetime):
                return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
            return value
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            # POI reads every number as a double
            return float(value) if value_render != "FORMATTED_VALUE" else (
                int(value) if float(value).is_integer() else float(value))
        return str(value)


@register
class IonToExcel(CorePlugin):
    """Convert ION records to an Excel workbook (one sheet per ``from`` entry)."""

    type = "io.kestra.plugin.serdes.excel.IonToExcel"
    aliases = ("io.kestra.plugin.serdes.excel.ExcelWriter",)
    kind = RUNNABLE

    class Props(Props):
        from_: Union[Text, dict[str, Text]] = Field(alias="from")
        charset: Text = "UTF-8"
        sheetsTitle: Text = "Sheet"
        header: bool = True
        styles: bool = True
        dateFormat: Optional[Text] = None
        timeFormat: Optional[Text] = None
        dateTimeFormat: Optional[Text] = None
        timeZoneId: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import openpyxl

        props = self.task.props
        formats = TextFormats(ctx, props)
        header = render_bool(ctx, props.get("header"), True)
        styles = render_bool(ctx, props.get("styles"), True)
        source = props.get("from")
        rendered = ctx.render(source) if not isinstance(source, dict) else {
            ctx.render_string(k): ctx.render_string(v) for k, v in source.items()}
        if isinstance(rendered, dict):
            sheets = {str(k): str(v).strip() for k, v in rendered.items()}
        else:
            sheets = {render_text(ctx, props.get("sheetsTitle")) or "Sheet": source_uri(ctx, props)}
        workbook = openpyxl.Workbook()
        workbook.remove(workbook.active)
        total = 0
        for title, uri in sheets.items():
            sheet = workbook.create_sheet(title=title[:31])
            first = True
            count = 0
            for record in read_records(ctx, uri, render_text(ctx, props.get("charset")) or "UTF-8"):
                if isinstance(record, list):
                    if header:
                        raise TaskFailure("Invalid data of type List with header")
                    values = record
                elif isinstance(record, dict):
                    if first and header:
                        sheet.append([str(k) for k in record])
                    values = list(record.values())
                else:
                    values = [record]
                first = False
                sheet.append([self._value(v, formats, styles) for v in values])
                if styles:
                    for cell in sheet[sheet.max_row]:
                        if isinstance(cell.value, datetime):
                            cell.number_format = "yyyy-mm-dd hh:mm:ss"
                        elif isinstance(cell.value, date):
                            cell.number_format = "yyyy-mm-dd"
                count += 1
            ctx.metric("counter", "records", count)
            total += count
        buffer = io.BytesIO()
        workbook.save(buffer)
        return {"uri": platform_of(ctx).put_file(buffer.getvalue(), extension=".xlsx"), "size": total}

    @staticmethod
    def _value(value: Any, formats: TextFormats, styles: bool) -> Any:
        if value is None:
            return "null"  # String.valueOf(null), as Kestra writes it
        if isinstance(value, bool) or isinstance(value, (int, float)):
            return value
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, datetime):
            moment = value.astimezone(formats.zone) if value.tzinfo else value
            return moment.replace(tzinfo=None) if styles else _serial(moment)
        if isinstance(value, date):
            return value if styles else _serial(value)
        text = formats.convert(value) or ""
        if text.startswith("Formula:"):
            return "=" + text[len("Formula:"):]
        return text
