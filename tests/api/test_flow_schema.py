"""The flow JSON Schema served at Kestra's path: what an editor's YAML language server validates against."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator.engine.flow_schema import schema_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator():
    schema = schema_for("flow")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator, source: str) -> list[str]:
    return [error.message for error in validator.iter_errors(yaml.safe_load(source))]


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_example_flows_match_the_schema(validator, path):
    assert errors(validator, path.read_text()) == []


def test_a_flow_with_flowables_triggers_and_expressions_matches(validator):
    source = """
id: nested
namespace: company.team
inputs:
  - id: n
    type: INT
    defaults: 3
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: "{{ inputs.n }}"
    tasks:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: hi
        retry: {type: constant, interval: PT1S, maxAttempts: 2}
  - id: branch
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.n }}"
    cases:
      "3":
        - id: three
          type: io.kestra.core.tasks.debugs.Return
          format: three
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
"""
    assert errors(validator, source) == []


def test_unknown_property_unknown_type_and_wrong_type_are_reported(validator):
    unknown_property = errors(validator, """
id: f
namespace: n
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: hi
    mesage: typo
""")
    assert unknown_property
    wrong_type = errors(validator, """
id: f
namespace: n
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: [1]
    tasks: []
""")
    assert wrong_type
    missing = errors(validator, "id: f\nnamespace: n\n")
    assert any("tasks" in message for message in missing)


def test_served_at_kestras_path(client):
    answer = client.get("/api/v1/plugins/schemas/flow")
    assert answer.status_code == 200
    body = answer.json()
    assert body["$ref"] == "#/definitions/flow"
    assert "io.kestra.plugin.core.log.Log" in body["definitions"]
    assert client.get("/api/v1/main/plugins/schemas/task").json()["$ref"] == "#/definitions/task"
    missing = client.get("/api/v1/plugins/schemas/nothing")
    assert missing.status_code == 404
    assert "Unknown schema type" in missing.json()["message"]


def test_every_flow_of_the_kestra_corpus_that_parses_matches_the_schema(validator):
    from orchestrator.engine.flow import parse_flow

    candidates = [ROOT.parent / "shared" / "kestra-flows", Path("/work/shared/kestra-flows")]
    corpus = next((path for path in candidates if path.is_dir()), None)
    assert corpus is not None, f"the Kestra corpus is missing (looked in {candidates})"
    checked, mismatches = 0, []
    for path in sorted(corpus.rglob("*.y*ml")):
        source = path.read_text()
        try:
            documents = list(yaml.safe_load_all(source))
            if len(documents) != 1:
                continue
            parse_flow(source)
        except Exception:  # noqa: BLE001 - flows the parser refuses are not the schema's business here
            continue
        checked += 1
        mismatches += [(path.name, e.json_path, e.message) for e in validator.iter_errors(documents[0])]
    assert checked > 150
    assert mismatches == []
