"""Internal storage behind ``kestra://`` URIs, on Django's Storage API (filesystem by default).

``kestra:///a/b/flow/executions/<id>/...`` maps to the storage path ``a/b/flow/executions/<id>/...``;
namespace files (``nsfile:///path`` or a bare relative path) are rows of :class:`NamespaceFile`.
"""
from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from orchestrator.engine.errors import CelestraError

SCHEME = "kestra://"


def _path(uri: str) -> str:
    if not uri.startswith(SCHEME):
        raise CelestraError(f"Invalid internal storage URI: {uri}")
    path = uri[len(SCHEME):].lstrip("/")
    if ".." in path.split("/"):
        raise CelestraError(f"Invalid internal storage URI: {uri}")
    return path


def put(path: str, content: bytes) -> str:
    path = path.lstrip("/")
    if default_storage.exists(path):
        default_storage.delete(path)
    default_storage.save(path, ContentFile(content))
    return SCHEME + "/" + path


def get(uri: str) -> bytes:
    path = _path(uri)
    if not default_storage.exists(path):
        raise CelestraError(f"File not found: {uri}")
    with default_storage.open(path, "rb") as handle:
        return handle.read()


def _nsfile(path: str, namespace: str) -> bytes | None:
    from .models import NamespaceFile

    if path.startswith("nsfile://"):
        rest = path[len("nsfile://"):]
        if rest.startswith("/"):
            ns, rel = namespace, rest
        else:
            ns, _, rel = rest.partition("/")
            rel = "/" + rel
    else:
        ns, rel = namespace, "/" + path.lstrip("/")
    row = NamespaceFile.objects.filter(namespace=ns, path=rel).first()
    return bytes(row.content) if row else None


def read_bytes(path: str, namespace: str) -> bytes:
    if path.startswith(SCHEME):
        return get(path)
    content = _nsfile(path, namespace)
    if content is None:
        raise CelestraError(f"File not found: {path}")
    return content


def read_text(path: str, namespace: str) -> str:
    return read_bytes(path, namespace).decode("utf-8")


def exists(path: str, namespace: str) -> bool:
    if path.startswith(SCHEME):
        return default_storage.exists(_path(path))
    return _nsfile(path, namespace) is not None


def size(path: str, namespace: str) -> int:
    return len(read_bytes(path, namespace))


class ExecutionFiles:
    """The FileStore that input resolution uses for FILE inputs."""

    def put_input_file(self, namespace: str, flow_id: str, execution_id: str, input_id: str,
                       filename: str, content: bytes) -> str:
        return put(f"{namespace.replace('.', '/')}/{flow_id}/executions/{execution_id}/inputs/{input_id}/{filename}",
                   content)

    def exists(self, uri: str) -> bool:
        return default_storage.exists(_path(uri))
