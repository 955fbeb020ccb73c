"""``io.kestra.plugin.compress``: ArchiveDecompress and ArchiveCompress (the standard library's zipfile/tarfile).

``algorithm`` is the archive format (``ZIP``, ``JAR``, ``TAR``); ``compression`` an optional
compression around it (``GZIP``, ``BZIP2``, ``XZ``, ``LZMA``; a ``.tar.gz`` is ``TAR`` + ``GZIP``).
Kestra's other formats (``AR``, ``ARJ``, ``CPIO``, ``DUMP``; ``ZSTD``, ``BROTLI``, ``SNAPPY``…) are refused
with an error naming the property. ``ArchiveDecompress`` stores each file of the archive in internal
storage (``files``: entry name → URI, with the ``size`` and ``count`` metrics); ``ArchiveCompress``
writes the files of ``from`` (archive path → internal storage URI) into one archive (``uri``).
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import posixpath
import tarfile
import zipfile
from typing import Any, Callable, Optional, Union

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core._render import render_text

ARCHIVES = ("AR", "ARJ", "CPIO", "DUMP", "JAR", "TAR", "ZIP")
SUPPORTED_ARCHIVES = ("JAR", "TAR", "ZIP")
COMPRESSIONS = ("BROTLI", "BZIP2", "DEFLATE", "DEFLATE64", "GZIP", "LZ4BLOCK", "LZ4FRAME", "LZMA", "SNAPPY",
                "SNAPPYFRAME", "XZ", "Z", "ZSTD")
DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "GZIP": gzip.decompress, "BZIP2": bz2.decompress, "XZ": lzma.decompress,
    "LZMA": lambda data: lzma.decompress(data, format=lzma.FORMAT_ALONE),
}
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "GZIP": gzip.compress, "BZIP2": bz2.compress, "XZ": lzma.compress,
    "LZMA": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
}


class ArchiveProps(Props):
    algorithm: Text
    compression: Optional[Text] = None


def _algorithm(ctx: RunContext, props: dict[str, Any]) -> tuple[str, str | None]:
    algorithm = (render_text(ctx, props.get("algorithm")) or "").strip().upper()
    if algorithm not in ARCHIVES:
        raise TaskFailure(f"Invalid property 'algorithm': '{algorithm}' is not one of {', '.join(ARCHIVES)}")
    if algorithm not in SUPPORTED_ARCHIVES:
        raise TaskFailure(f"Invalid property 'algorithm': {algorithm} archives are not supported, use "
                          f"{', '.join(SUPPORTED_ARCHIVES)}")
    compression = render_text(ctx, props.get("compression"))
    if compression is None or not compression.strip():
        return algorithm, None
    compression = compression.strip().upper()
    if compression not in COMPRESSIONS:
        raise TaskFailure(f"Invalid property 'compression': '{compression}' is not one of {', '.join(COMPRESSIONS)}")
    if compression not in DECOMPRESS:
        raise TaskFailure(f"Invalid property 'compression': {compression} is not supported, use "
                          f"{', '.join(DECOMPRESS)}")
    return algorithm, compression


def _entries(algorithm: str, data: bytes) -> list[tuple[str, bytes]]:
    """The files of an archive (directories skipped), in archive order."""
    out: list[tuple[str, bytes]] = []
    if algorithm in ("ZIP", "JAR"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    out.append((info.filename, archive.read(info)))
        return out
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                out.append((member.name, handle.read() if handle else b""))
    return out


def _safe(name: str) -> str:
    """The stored name of an entry (spaces as ``_``, as Kestra); a path leaving the archive is refused."""
    normal = posixpath.normpath(name.replace("\\", "/"))
    if normal.startswith("../") or normal == ".." or normal.startswith("/"):
        raise TaskFailure(f"Path traversal attempt detected in archive entry: {name}")
    return posixpath.basename(normal).replace(" ", "_")


class ArchiveDecompressProps(ArchiveProps):
    from_: Text = Field(alias="from")


@register
class ArchiveDecompress(CorePlugin):
    """Extract the files of an archive of internal storage; ``files`` maps each entry name to its URI."""

    type = "io.kestra.plugin.compress.ArchiveDecompress"
    kind = RUNNABLE
    Props = ArchiveDecompressProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        algorithm, compression = _algorithm(ctx, props)
        source = (render_text(ctx, props.get("from")) or "").strip()
        if not source:
            raise TaskFailure("Invalid property 'from': the archive URI is blank")
        platform = platform_of(ctx)
        data = platform.read_file(source)
        try:
            if compression:
                data = DECOMPRESS[compression](data)
            entries = _entries(algorithm, data)
        except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise TaskFailure(f"Unable to read '{source}' as a {algorithm} archive"
                              f"{' compressed with ' + compression if compression else ''}: {exc}") from None
        files: dict[str, str] = {}
        size = 0
        for name, content in entries:
            files[name] = platform.put_file(content, _safe(name))
            size += len(content)
        ctx.metric("counter", "size", float(size))
        ctx.metric("counter", "count", float(len(files)))
        return {"files": files}


class ArchiveCompressProps(ArchiveProps):
    from_: Union[dict[str, Any], list[dict[str, Any]], str] = Field(alias="from")


def _sources(ctx: RunContext, value: Any) -> dict[str, str]:
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            raise TaskFailure("Invalid property 'from': expected a map of archive paths to file URIs") from None
    maps = rendered if isinstance(rendered, list) else [rendered]
    out: dict[str, str] = {}
    for item in maps:
        if not isinstance(item, dict):
            raise TaskFailure("Invalid property 'from': expected a map of archive paths to file URIs")
        out.update({ctx.render_string(str(k)): ctx.render_string(str(v)) for k, v in item.items()})
    if not out:
        raise TaskFailure("Invalid property 'from': no file to archive")
    return out


@register
class ArchiveCompress(CorePlugin):
    """Write files of internal storage (``from``: archive path → URI) into one archive; output ``uri``."""

    type = "io.kestra.plugin.compress.ArchiveCompress"
    kind = RUNNABLE
    Props = ArchiveCompressProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        algorithm, compression = _algorithm(ctx, props)
        platform = platform_of(ctx)
        buffer = io.BytesIO()
        sources = _sources(ctx, props.get("from"))
        if algorithm in ("ZIP", "JAR"):
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path, uri in sources.items():
                    archive.writestr(path, platform.read_file(uri))
        else:
            with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as archive:
                for path, uri in sources.items():
                    content = platform.read_file(uri)
                    info = tarfile.TarInfo(path)
                    info.size = len(content)
                    archive.addfile(info, io.BytesIO(content))
        data = buffer.getvalue()
        if compression:
            data = COMPRESS[compression](data)
        return {"uri": platform.put_file(data, extension=".tmp")}
