"""The OpenAPI document: generated from the views, served, and committed up to date."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_served_document_lists_kestras_paths(client):
    answer = client.get("/api/openapi.yaml")
    assert answer.status_code == 200
    document = yaml.safe_load(answer.content)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in ("/api/v1/main/flows/{namespace}/{flow_id}", "/api/v1/main/executions/restart/by-ids",
                 "/api/v1/main/executions/{a}/kill", "/api/v1/main/flows/import",
                 "/api/v1/main/plugins/schemas/{kind}"):
        assert path in paths, path
    assert not any(path.endswith("/.") for path in paths)  # the JSON 404 of unknown routes is no endpoint


def test_committed_document_is_up_to_date(tmp_path):
    generated = tmp_path / "openapi.yaml"
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "spectacular", "--file", str(generated)],
                   cwd=ROOT, check=True, capture_output=True)
    committed = ROOT / "docs" / "openapi.yaml"
    assert committed.read_text() == generated.read_text(), "docs/openapi.yaml is stale: run `make openapi`"
