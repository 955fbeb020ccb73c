"""What every API view shares: query parameter parsing, Kestra's search filters, paging, bodies."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from django.db.models import Q, QuerySet
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from ..exceptions import ApiError, BadRequest


class FirstRenderer(DefaultContentNegotiation):
    """JSON whatever the ``Accept`` header says (clients send ``application/x-yaml``, ``*/*``, ``text/plain``)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class ApiView(APIView):
    content_negotiation_class = FirstRenderer


# --- parameters ----------------------------------------------------------------------------------------

def bool_param(request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes", "on")


JAVA_INT_MAX = 2**31 - 1


def int_param(request, name: str, default: int | None = None, minimum: int | None = None) -> int | None:
    """An ``Integer`` query parameter: Kestra (Micronaut) refuses text and values beyond Java's int."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value.strip()) if len(value) <= 20 else None
    except ValueError:
        number = None
    if number is None or not -JAVA_INT_MAX - 1 <= number <= JAVA_INT_MAX:
        raise BadRequest(f"Failed to convert argument [{name}] for value [{value}]") from None
    if minimum is not None and number < minimum:
        raise BadRequest(f"{name}: must be greater than or equal to {minimum}")
    return number


def date_param(value: str, name: str) -> datetime:
    from orchestrator.engine.timeutil import parse_iso

    try:
        moment = parse_iso(value.replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None:
        raise BadRequest(f"Failed to convert argument [{name}] for value [{value}]")
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def parse_labels(values: Iterable[str], *, strict: bool = True) -> list[tuple[str, str]]:
    """``labels=key:value`` query parameters (the value may itself contain ``:``)."""
    out = []
    for text in values:
        for item in [text]:
            key, sep, value = item.partition(":")
            if not sep or not key:
                if strict:
                    raise BadRequest(f"Invalid label '{item}', expected 'key:value'")
                continue
            out.append((key, value))
    return out


def yaml_body(request) -> str:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The body is not valid UTF-8 text") from None
    if not text.strip():
        raise ApiError("The body is empty: a flow source in YAML is expected")
    return text


# --- search filters (spec §11.1) -----------------------------------------------------------------------

#: ``filters[field][OP]``, and ``filters[labels][OP][key]`` (the label's key in the name, its value as the value)
_FILTER = re.compile(r"^filters\[(?P<field>[A-Za-z_.]+)\]\[(?P<op>[A-Z_]+)\](?:\[(?P<key>[^\]]+)\])?$")
OPS = frozenset({"EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL_TO",
                 "LESS_THAN_OR_EQUAL_TO", "IN", "NOT_IN", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "REGEX", "PREFIX"})


@dataclass
class Filter:
    field: str
    op: str
    values: list[str]

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


def parse_filters(request, legacy: dict[str, str]) -> list[Filter]:
    """``filters[<field>][<OP>]=value`` parameters, plus the flat 0.x parameters named in ``legacy``.

    ``legacy`` maps a flat parameter to its filter operation (``namespace`` → ``PREFIX``...).
    """
    out: list[Filter] = []
    for key in request.query_params:
        match = _FILTER.match(key)
        if not match:
            continue
        op = match["op"]
        if op not in OPS:
            raise BadRequest(f"Invalid filter operation '{op}'")
        values: list[str] = []
        for raw in request.query_params.getlist(key):
            values.extend(v for v in (raw.split(",") if op in ("IN", "NOT_IN") else [raw]))
        if match["key"] is not None:
            if match["field"] != "labels":
                raise BadRequest(f"Invalid filter '{key}': only labels take a key")
            values = [f"{match['key']}:{value}" for value in values]
        out.append(Filter(match["field"], op, values))
    for name, op in legacy.items():
        values = request.query_params.getlist(name)
        values = [v for v in values if v != ""]
        if values:
            if name in ("state",):
                values = [p for v in values for p in v.split(",") if p]
                out.append(Filter(name, "IN", values))
            elif name == "labels":
                out.append(Filter(name, op, values))
            else:
                out.append(Filter(name, op, values[:1]))
    return out


def text_q(column: str, f: Filter) -> Q:
    """A Q object for a text column under one filter operation."""
    value = f.value
    if f.op == "EQUALS":
        return Q(**{column: value})
    if f.op == "NOT_EQUALS":
        return ~Q(**{column: value})
    if f.op == "IN":
        return Q(**{f"{column}__in": f.values})
    if f.op == "NOT_IN":
        return ~Q(**{f"{column}__in": f.values})
    if f.op == "STARTS_WITH":
        return Q(**{f"{column}__startswith": value})
    if f.op == "ENDS_WITH":
        return Q(**{f"{column}__endswith": value})
    if f.op == "CONTAINS":
        return Q(**{f"{column}__icontains": value})
    if f.op == "REGEX":
        check_regex_filter(f)
        return Q(**{f"{column}__regex": value})
    if f.op == "PREFIX":
        return Q(**{column: value}) | Q(**{f"{column}__startswith": value + "."})
    raise BadRequest(f"Operation {f.op} is not supported on '{f.field}'")


def check_regex_filter(f: Filter) -> None:
    """A REGEX filter must compile: an invalid pattern is the caller's error (400), not the database's."""
    from orchestrator.engine.expressions import ExpressionError
    from orchestrator.engine.expressions._regex import compile_regex

    try:
        compile_regex(f.value)
    except ExpressionError:
        raise BadRequest(f"Invalid regular expression '{f.value}' for filter '{f.field}'") from None


def date_q(column: str, f: Filter) -> Q:
    moment = date_param(f.value, f.field)
    lookups = {"GREATER_THAN": "gt", "GREATER_THAN_OR_EQUAL_TO": "gte", "LESS_THAN": "lt",
               "LESS_THAN_OR_EQUAL_TO": "lte", "EQUALS": "exact"}
    if f.op not in lookups:
        raise BadRequest(f"Operation {f.op} is not supported on '{f.field}'")
    return Q(**{f"{column}__{lookups[f.op]}": moment})


def label_pairs(f: Filter) -> list[tuple[str, str]]:
    values = [p for v in f.values for p in (v.split(",") if f.op in ("IN", "NOT_IN") else [v])]
    return parse_labels(values, strict=False)


# --- paging --------------------------------------------------------------------------------------------

def page(request, queryset: QuerySet, serialize: Callable[[list[Any]], list[Any]],
         sort_fields: dict[str, str], default_sort: list[str]) -> dict[str, Any]:
    """``{results, total}`` for ``page`` (1-based), ``size`` and ``sort=field:asc|desc``."""
    number = int_param(request, "page", 1, minimum=1) or 1
    size = int_param(request, "size", 10, minimum=1) or 10
    ordering = []
    for text in request.query_params.getlist("sort"):
        name, _, direction = text.partition(":")
        column = sort_fields.get(name)
        if column is None:
            raise BadRequest(f"Invalid sort field '{name}'")
        ordering.append(("-" if direction.lower() == "desc" else "") + column)
    queryset = queryset.order_by(*(ordering or default_sort))
    total = queryset.count()
    rows = list(queryset[(number - 1) * size:number * size])
    return {"results": serialize(rows), "total": total}
