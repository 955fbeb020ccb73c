"""ArchiveDecompress and ArchiveCompress on real archives (zipfile/tarfile), through the in-memory platform."""
from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from orchestrator.engine.errors import TaskFailure

from .test_storage_kv_plugins import Ctx, read, run


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/", b"")  # a directory entry: skipped
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_decompress_zip_gives_one_uri_per_file_and_metrics() -> None:
    ctx = Ctx()
    uri = ctx.platform.put_file(zip_bytes({"data/202401-divvy-tripdata.csv": b"a,b\n1,2\n", "read me.txt": b"hi"}),
                                "trips.zip")
    outputs = run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: ZIP\n    from: "{uri}"\n',
                  ctx)
    files = outputs["files"]
    assert sorted(files) == ["data/202401-divvy-tripdata.csv", "read me.txt"]
    assert read(ctx, files["data/202401-divvy-tripdata.csv"]) == "a,b\n1,2\n"
    assert read(ctx, files["read me.txt"]) == "hi" and files["read me.txt"].endswith("read_me.txt")
    assert ("counter", "size", 10.0, None) in ctx.metrics and ("counter", "count", 2.0, None) in ctx.metrics


def test_compress_then_decompress_tar_gz() -> None:
    ctx = Ctx()
    a = ctx.platform.put_file(b"first", "a.txt")
    b = ctx.platform.put_file(b"second", "b.txt")
    archive = run(f"""    type: io.kestra.plugin.compress.ArchiveCompress
    algorithm: TAR
    compression: GZIP
    from:
      docs/a.txt: "{a}"
      b.txt: "{b}"
""", ctx)["uri"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(ctx.platform.read_file(archive)))) as tar:
        assert sorted(tar.getnames()) == ["b.txt", "docs/a.txt"]
        assert tar.extractfile("docs/a.txt").read() == b"first"  # type: ignore[union-attr]
    files = run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: TAR\n    compression: gzip\n'
                f'    from: "{archive}"\n', ctx)["files"]
    assert {k: read(ctx, v) for k, v in files.items()} == {"docs/a.txt": "first", "b.txt": "second"}
    zipped = run(f'    type: io.kestra.plugin.compress.ArchiveCompress\n    algorithm: ZIP\n    from:\n      x.txt: "{a}"\n',
                 ctx)["uri"]
    with zipfile.ZipFile(io.BytesIO(ctx.platform.read_file(zipped))) as archive_zip:
        assert archive_zip.read("x.txt") == b"first"


def test_archive_errors_name_the_property() -> None:
    ctx = Ctx()
    uri = ctx.platform.put_file(b"not a zip", "x.zip")
    with pytest.raises(TaskFailure, match=r"Unable to read 'kestra://.*' as a ZIP archive"):
        run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: ZIP\n    from: "{uri}"\n', ctx)
    with pytest.raises(TaskFailure, match="Invalid property 'algorithm': 'RAR' is not one of AR, ARJ"):
        run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: RAR\n    from: "{uri}"\n', ctx)
    with pytest.raises(TaskFailure, match="Invalid property 'algorithm': CPIO archives are not supported"):
        run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: CPIO\n    from: "{uri}"\n', ctx)
    with pytest.raises(TaskFailure, match="Invalid property 'compression': ZSTD is not supported"):
        run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: TAR\n    compression: ZSTD\n'
            f'    from: "{uri}"\n', ctx)
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/passwd", b"x")
    bad = ctx.platform.put_file(evil.getvalue(), "evil.zip")
    with pytest.raises(TaskFailure, match="Path traversal attempt detected in archive entry: ../../etc/passwd"):
        run(f'    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: ZIP\n    from: "{bad}"\n', ctx)
