"""``io.kestra.plugin.serdes.json``: JSON (one value per line, or one document) to ION and back."""
from __future__ import annotations

import base64
import json
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text

from ._base import platform_of, read_records, render_bool, render_text, render_zone, source_uri, write_records


def _charset(ctx: RunContext, props: dict[str, Any]) -> str:
    import codecs

    charset = render_text(ctx, props.get("charset")) or "UTF-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:
        raise TaskFailure(f"Invalid value for 'charset': unknown charset `{charset}`") from None


@register
class JsonToIon(CorePlugin):
    """Convert a JSON-lines file (``newLine: true``, the default) or a JSON document to ION records;
    a top-level array gives one record per item."""

    type = "io.kestra.plugin.serdes.json.JsonToIon"
    aliases = ("io.kestra.plugin.serdes.json.JsonReader",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        charset: Text = "UTF-8"
        newLine: bool = True

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        text = platform.read_file(source_uri(ctx, props)).decode(_charset(ctx, props))
        records: list[Any] = []
        if render_bool(ctx, props.get("newLine"), True):
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():  # a blank line (a trailing one, most often) holds no value
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise TaskFailure(f"Invalid JSON at line {number}: {exc}; set 'newLine: false' "
                                      "if the file is one JSON document") from None
        else:
            try:
                document = json.loads(text)
            except ValueError as exc:
                raise TaskFailure(f"Invalid JSON document: {exc}") from None
            records = document if isinstance(document, list) else [document]
        data, count = write_records(records)
        ctx.metric("counter", "records", count)
        return {"uri": platform.put_file(data, extension=".ion")}


class _JavaTimeEncoder(json.JSONEncoder):
    """Jackson with the JavaTimeModule and ISO dates: instants as ``...Z``, days as ``yyyy-MM-dd``."""

    def __init__(self, *args: Any, zone: Any = timezone.utc, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.zone = zone

    def default(self, value: Any) -> Any:
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=self.zone)
            text = moment.isoformat()
            return text.replace("+00:00", "Z")
        if isinstance(value, (date, time)):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value) if value != value.to_integral_value() else int(value)
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        return super().default(value)


@register
class IonToJson(CorePlugin):
    """Convert ION records to JSON lines (``newLine: true``, ``.jsonl``) or one JSON array (``.json``)."""

    type = "io.kestra.plugin.serdes.json.IonToJson"
    aliases = ("io.kestra.plugin.serdes.json.JsonWriter",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        charset: Text = "UTF-8"
        newLine: bool = True
        timeZoneId: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        zone = render_zone(ctx, props.get("timeZoneId"))
        new_line = render_bool(ctx, props.get("newLine"), True)
        charset = _charset(ctx, props)
        records = list(read_records(ctx, source_uri(ctx, props), charset))

        def dumps(value: Any) -> str:
            return json.dumps(value, cls=_JavaTimeEncoder, zone=zone, ensure_ascii=False, separators=(",", ":"))

        if new_line:
            text = "".join(dumps(record) + "\n" for record in records)
        else:
            text = dumps(records)
        ctx.metric("counter", "records", len(records))
        return {"uri": platform.put_file(text.encode("utf-8"), extension=".jsonl" if new_line else ".json")}
