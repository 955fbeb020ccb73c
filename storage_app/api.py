"""KV store and namespace files over the API (spec §10.2, §10.4, §11.6)."""
from __future__ import annotations

import io
import posixpath
import re
import zipfile
from datetime import date, datetime, timezone
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Length
from django.http import HttpResponse
from django.utils import timezone as djtz
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from flows_app.api.exceptions import ApiError, BadRequest, Gone, NotFound
from flows_app.api.parsers import loads
from flows_app.api.views.common import ApiView
from orchestrator.engine.timeutil import instant_text, iso, parse_duration

from .models import KVEntry, NamespaceFile

KEY_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
KV_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DURATION = re.compile(r"^-?P(?=\d|T\d)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$", re.IGNORECASE)


# --- KV ------------------------------------------------------------------------------------------------

def check_key(key: str) -> None:
    if not KEY_PATTERN.match(key):
        raise ApiError(f"Key must match the regex `{KEY_PATTERN.pattern}`")


def typed_kv_value(text: str) -> tuple[str, Any]:
    """The KV type and stored value of a ``PUT`` body (a JSON literal, or bare text).

    ``"text"`` → STRING, ``42`` → NUMBER, ``true`` → BOOLEAN, ``{…}``/``[…]`` → JSON; bare ISO
    instants, dates and durations → DATETIME, DATE, DURATION; any other bare text → STRING.
    """
    stripped = text.strip()
    if stripped.lstrip("+-") in ("NaN", "Infinity"):
        raise BadRequest(f"Invalid value '{stripped[:40]}': NaN and Infinity are not JSON numbers")
    try:
        value = loads(stripped)
    except ValueError as exc:
        if stripped[:1] in ("{", "[") and ("not a JSON value" in str(exc) or "nested too deeply" in str(exc)):
            raise BadRequest(f"Invalid JSON value: {exc}") from None
        if _DATETIME.match(stripped):
            try:
                moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
            except ValueError as exc:
                raise BadRequest(f"Invalid date-time '{stripped}': {exc}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return "DATETIME", instant_text(moment)
        if _DATE.match(stripped):
            try:
                return "DATE", date.fromisoformat(stripped).isoformat()
            except ValueError as exc:
                raise BadRequest(f"Invalid date '{stripped}': {exc}") from None
        if _DURATION.match(stripped):
            return "DURATION", stripped.upper()
        return "STRING", text
    if isinstance(value, bool):
        return "BOOLEAN", value
    if isinstance(value, (int, float)):
        return "NUMBER", value
    if isinstance(value, (dict, list)):
        return "JSON", value
    if value is None:
        return "STRING", None
    return "STRING", value


def _live(namespace: str):
    return KVEntry.objects.filter(namespace=namespace).filter(Q(expires__isnull=True) | Q(expires__gt=djtz.now()))


def kv_meta(entry: KVEntry) -> dict[str, Any]:
    return {"namespace": entry.namespace, "key": entry.key, "description": entry.description or None,
            "creationDate": iso(entry.created), "updateDate": iso(entry.updated),
            "expirationDate": iso(entry.expires)}


class KVListView(ApiView):
    """``GET /namespaces/{ns}/kv``: metadata of live keys; ``DELETE`` with ``{keys: [...]}``."""

    def get(self, request, namespace):
        return Response([kv_meta(e) for e in _live(namespace).order_by("key")])

    def delete(self, request, namespace):
        keys = request.data.get("keys") if isinstance(request.data, dict) else None
        if not isinstance(keys, list):
            raise BadRequest("A body {\"keys\": [...]} is expected")
        with transaction.atomic():
            existing = list(KVEntry.objects.filter(namespace=namespace, key__in=[str(k) for k in keys])
                            .values_list("key", flat=True))
            KVEntry.objects.filter(namespace=namespace, key__in=existing).delete()
        return Response({"keys": existing})


class KVView(ApiView):
    """``GET|PUT|DELETE /namespaces/{ns}/kv/{key}``."""

    parser_classes: list = []

    def get(self, request, namespace, key):
        entry = KVEntry.objects.filter(namespace=namespace, key=key).first()
        if entry is None:
            raise NotFound(f"No value found for key '{key}' in namespace '{namespace}'")
        if entry.expires is not None and entry.expires <= djtz.now():
            entry.delete()
            raise Gone(f"The requested value has expired: key '{key}' in namespace '{namespace}'")
        return Response({"type": entry.type, "value": entry.value})

    def put(self, request, namespace, key):
        check_key(key)
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("The value is not valid UTF-8 text") from None
        kv_type, value = typed_kv_value(text)
        ttl = request.headers.get("ttl") or request.query_params.get("ttl")
        expires = None
        if ttl:
            try:
                expires = djtz.now() + parse_duration(ttl)
            except ValueError:
                raise BadRequest(f"Invalid ttl '{ttl}', an ISO-8601 duration is expected") from None
        defaults = {"value": value, "type": kv_type, "expires": expires}
        description = request.headers.get("description")
        if description is not None:
            defaults["description"] = description
        KVEntry.objects.update_or_create(namespace=namespace, key=key, defaults=defaults)
        return Response(status=status.HTTP_200_OK)

    def delete(self, request, namespace, key):
        deleted, _ = KVEntry.objects.filter(namespace=namespace, key=key).delete()
        return Response(bool(deleted))


# --- namespace files -----------------------------------------------------------------------------------

def clean_path(path: str | None, *, allow_root: bool = False) -> str:
    """``/a/b.sql`` form: leading slash, no ``..``, no trailing slash (``/`` itself only when allowed)."""
    text = (path or "/").replace("\\", "/")
    if ".." in text.split("/"):
        raise ApiError(f"Invalid path: {path}")
    normalized = posixpath.normpath("/" + text.lstrip("/"))
    if normalized == "/" and not allow_root:
        raise ApiError("A file path is expected")
    return normalized


def _epoch_ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def file_attributes(name: str, *, directory: bool, size: int = 0, created: datetime | None = None,
                    updated: datetime | None = None) -> dict[str, Any]:
    return {"fileName": name, "type": "Directory" if directory else "File", "size": size,
            "creationTime": _epoch_ms(created), "lastModifiedTime": _epoch_ms(updated), "metadata": {}}


def _under(namespace: str, directory: str):
    prefix = "/" if directory == "/" else directory + "/"
    return NamespaceFile.objects.filter(namespace=namespace, path__startswith=prefix), prefix


def list_directory(namespace: str, directory: str) -> list[dict[str, Any]]:
    rows, prefix = _under(namespace, directory)
    entries: dict[str, dict[str, Any]] = {}
    for row in rows.annotate(size=Length("content")).defer("content").order_by("path"):
        rest = row.path[len(prefix):]
        name, sep, _ = rest.partition("/")
        if not sep:
            entries[name] = file_attributes(name, directory=False, size=row.size or 0, created=row.created,
                                            updated=row.updated)
            continue
        current = entries.get(name)
        if current is None or current["type"] == "File":
            entries[name] = file_attributes(name, directory=True, created=row.created, updated=row.updated)
        else:
            current["lastModifiedTime"] = max(current["lastModifiedTime"] or 0, _epoch_ms(row.updated) or 0)
            current["creationTime"] = min(current["creationTime"] or 0, _epoch_ms(row.created) or 0)
    return [entries[k] for k in sorted(entries)]


def put_file(namespace: str, path: str, content: bytes) -> None:
    NamespaceFile.objects.update_or_create(namespace=namespace, path=path, defaults={"content": content})


class NamespaceFilesView(ApiView):
    """``GET|POST|PUT|DELETE /namespaces/{ns}/files?path=``."""

    parser_classes = [MultiPartParser]

    def get(self, request, namespace):
        path = clean_path(request.query_params.get("path"))
        row = NamespaceFile.objects.filter(namespace=namespace, path=path).first()
        if row is None:
            raise NotFound(f"File not found: {path}")
        response = HttpResponse(bytes(row.content), content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{posixpath.basename(path)}"'
        return response

    def post(self, request, namespace):
        path = clean_path(request.query_params.get("path"), allow_root=True)
        upload = request.FILES.get("fileContent")
        if upload is None:
            raise BadRequest("A multipart part 'fileContent' is expected")
        content = upload.read()
        with transaction.atomic():
            if path == "/":  # a zip uploaded to the root is extracted
                self._extract(namespace, path, content, upload.name or "")
            else:
                put_file(namespace, path, content)
        return Response(status=status.HTTP_200_OK)

    @staticmethod
    def _extract(namespace: str, directory: str, content: bytes, name: str) -> None:
        if not name.endswith(".zip"):
            raise ApiError("A file path is expected")
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
        except zipfile.BadZipFile:
            raise ApiError("Invalid zip file") from None
        for member in archive.infolist():
            if member.is_dir():
                continue
            target = clean_path(posixpath.join(directory, member.filename))
            put_file(namespace, target, archive.read(member))

    def put(self, request, namespace):
        source = clean_path(request.query_params.get("from"))
        target = clean_path(request.query_params.get("to"))
        with transaction.atomic():
            row = NamespaceFile.objects.filter(namespace=namespace, path=source).first()
            if row is not None:
                NamespaceFile.objects.filter(namespace=namespace, path=target).delete()
                row.path = target
                row.save(update_fields=["path", "updated"])
                return Response(status=status.HTTP_200_OK)
            rows, prefix = _under(namespace, source)
            rows = list(rows)
            if not rows:
                raise NotFound(f"File not found: {source}")
            for moved in rows:
                new_path = target + "/" + moved.path[len(prefix):]
                NamespaceFile.objects.filter(namespace=namespace, path=new_path).delete()
                moved.path = new_path
                moved.save(update_fields=["path", "updated"])
        return Response(status=status.HTTP_200_OK)

    def delete(self, request, namespace):
        path = clean_path(request.query_params.get("path"), allow_root=True)
        with transaction.atomic():
            deleted, _ = NamespaceFile.objects.filter(namespace=namespace, path=path).delete()
            rows, _ = _under(namespace, path)
            deleted += rows.delete()[0]
        if not deleted:
            raise NotFound(f"File not found: {path}")
        return Response(status=status.HTTP_204_NO_CONTENT)


class NamespaceDirectoryView(ApiView):
    """``GET /namespaces/{ns}/files/directory?path=``: the entries of a directory; ``POST`` creates one."""

    def get(self, request, namespace):
        path = clean_path(request.query_params.get("path"), allow_root=True)
        entries = list_directory(namespace, path)
        if not entries and path != "/":
            if NamespaceFile.objects.filter(namespace=namespace, path=path).exists():
                raise ApiError(f"Not a directory: {path}")
            raise NotFound(f"Directory not found: {path}")
        return Response(entries)

    def post(self, request, namespace):
        # Directories exist through the files they hold: nothing to store for an empty one.
        clean_path(request.query_params.get("path"), allow_root=True)
        return Response(status=status.HTTP_200_OK)


class NamespaceFileStatsView(ApiView):
    """``GET /namespaces/{ns}/files/stats?path=``: the attributes of a file or a directory."""

    def get(self, request, namespace):
        path = clean_path(request.query_params.get("path"), allow_root=True)
        name = posixpath.basename(path) or "/"
        row = (NamespaceFile.objects.filter(namespace=namespace, path=path).annotate(size=Length("content"))
               .defer("content").first())
        if row is not None:
            return Response(file_attributes(name, directory=False, size=row.size or 0, created=row.created,
                                            updated=row.updated))
        rows, _ = _under(namespace, path)
        if path != "/" and not rows.exists():
            raise NotFound(f"File not found: {path}")
        return Response(file_attributes(name, directory=True))


class NamespaceFileSearchView(ApiView):
    """``GET /namespaces/{ns}/files/search?q=``: paths that contain ``q``."""

    def get(self, request, namespace):
        rows = NamespaceFile.objects.filter(namespace=namespace)
        if request.query_params.get("q"):
            rows = rows.filter(path__icontains=request.query_params["q"])
        return Response(list(rows.order_by("path").values_list("path", flat=True)))
