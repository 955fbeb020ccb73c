"""Manifest loading: shared inputs, variants, runs, steps, selection."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.manifest import (
    KINDS,
    ManifestError,
    RunTarget,
    load_manifest,
    parse_manifest,
    parse_run_target,
    resolve_inputs_spec,
)

CORPUS = Path("/work/shared/kestra-flows")

SHARED = {"T.inputs": {"source": "x", "values": {"string": "myString", "int": "42", "file": "<local path>"}}}


def manifest(*cases: dict, shared: dict | None = None):
    return parse_manifest({"sharedInputs": shared if shared is not None else SHARED, "cases": list(cases)})


def case(**fields) -> dict:
    return {"case": "c", "kind": "engine", "file": "valids/x.yaml", **fields}


class TestInputs:
    def test_ref_overrides_and_removals(self):
        resolved = resolve_inputs_spec({"$ref": "T.inputs", "int": "7", "extra": 1, "$remove": ["file"]}, SHARED)
        assert resolved == {"string": "myString", "int": "7", "extra": 1}

    def test_null_override_keeps_the_key(self):
        resolved = resolve_inputs_spec({"$ref": "T.inputs", "string": None}, SHARED)
        assert "string" in resolved and resolved["string"] is None

    def test_remove_as_string(self):
        assert "int" not in resolve_inputs_spec({"$ref": "T.inputs", "$remove": "int"}, SHARED)

    def test_shared_values_are_copied(self):
        first = resolve_inputs_spec({"$ref": "T.inputs"}, SHARED)
        first["string"] = "changed"
        assert SHARED["T.inputs"]["values"]["string"] == "myString"

    def test_none_and_plain(self):
        assert resolve_inputs_spec(None, SHARED) is None
        assert resolve_inputs_spec({}, SHARED) == {}
        assert resolve_inputs_spec({"a": True}, SHARED) == {"a": True}

    def test_unknown_ref(self):
        with pytest.raises(ManifestError, match="unknown sharedInputs reference 'Nope'"):
            resolve_inputs_spec({"$ref": "Nope"}, SHARED, "c")

    def test_not_a_map(self):
        with pytest.raises(ManifestError):
            resolve_inputs_spec(["a"], SHARED)


class TestExpansion:
    def test_single_variant_from_the_case(self):
        loaded = manifest(case(inputs={"$ref": "T.inputs"}, inputFiles={"file": "fixtures/a.yml"}, rawInputs=True,
                               executionLabels={"k": "v"}, expect={"state": "SUCCESS"}))
        (variant,) = loaded.cases[0].variants
        assert variant.index is None and variant.label == ""
        assert variant.inputs["int"] == "42" and variant.input_files == {"file": "fixtures/a.yml"}
        assert variant.raw_inputs is True and variant.execution_labels == {"k": "v"}
        assert variant.expect == {"state": "SUCCESS"}

    def test_variants_inherit_and_override(self):
        loaded = manifest(case(kind="parse", inputFiles={"file": "fixtures/a.yml"}, rawInputs=True, variants=[
            {"inputs": {"$ref": "T.inputs", "int": "9"}, "expect": {"error": {"contains": "9"}}},
            {"inputs": {"a": 1}, "inputFiles": {}, "rawInputs": False, "expect": {"error": {"contains": "21"}}},
        ]))
        first, second = loaded.cases[0].variants
        assert first.label == "variant 1" and first.inputs["int"] == "9"
        assert first.input_files == {"file": "fixtures/a.yml"} and first.raw_inputs is True
        assert second.label == "variant 2" and second.inputs == {"a": 1}
        assert second.input_files == {} and second.raw_inputs is False
        assert second.expect == {"error": {"contains": "21"}}

    def test_runs(self):
        loaded = manifest(case(runs=[{"expect": {"state": "SUCCESS"}}, {"expect": {"taskRunCount": 3}}]))
        assert loaded.cases[0].runs == [{"state": "SUCCESS"}, {"taskRunCount": 3}]
        assert loaded.cases[0].has_expectations()

    def test_steps(self):
        loaded = manifest(case(steps=[
            {"run": "io.kestra.tests/pause until PAUSED"},
            {"action": "POST /api/v1/executions/{id}/resume", "expect": {"httpStatus": 204}},
            {"wait": "1s", "expect": {"listenerExecutions": 0}},
            {"expect": {"listener": {"state": "SUCCESS"}}},
        ]))
        run, action, wait, only = loaded.cases[0].steps
        assert run.target() == RunTarget("io.kestra.tests", "pause", "PAUSED")
        assert run.label == "step 1 (io.kestra.tests/pause until PAUSED)"
        assert action.action.startswith("POST") and action.expect == {"httpStatus": 204} and action.target() is None
        assert wait.wait == "1s" and wait.label == "step 3 (wait 1s)"
        assert only.label == "step 4 (expect)"

    def test_case_fields(self):
        loaded = manifest(case(alsoLoad=["valids/a.yaml"], needs=["subflow"], testOnlyPlugins=["x.Y"],
                               run="runOneUntilPaused", level="api", executionId="test", namespace="ns",
                               flowId="f", fixtures={"kv": {}}, notes="n"))
        loaded_case = loaded.cases[0]
        assert loaded_case.also_load == ["valids/a.yaml"] and loaded_case.needs == ["subflow"]
        assert loaded_case.test_only_plugins == ["x.Y"] and loaded_case.run_mode == "runOneUntilPaused"
        assert loaded_case.execution_id == "test" and loaded_case.fixtures == {"kv": {}}
        assert manifest(case(run="start execution1 and wait")).cases[0].run_mode == "scenario"
        assert manifest(case()).cases[0].run_mode is None

    def test_no_expectations(self):
        assert not manifest(case(kind="no-assertion", expect=None)).cases[0].has_expectations()


class TestValidation:
    def test_duplicate_ids(self):
        with pytest.raises(ManifestError, match="duplicate case id"):
            manifest(case(), case())

    def test_unknown_kind(self):
        with pytest.raises(ManifestError, match="unknown kind"):
            manifest(case(kind="perf"))

    def test_missing_fields(self):
        with pytest.raises(ManifestError):
            manifest({"kind": "engine", "file": "x"})
        with pytest.raises(ManifestError, match="no file"):
            manifest({"case": "c", "kind": "engine"})

    def test_not_a_manifest(self):
        with pytest.raises(ManifestError):
            parse_manifest({"cases": "nope"})

    def test_load_errors(self, tmp_path):
        with pytest.raises(ManifestError, match="cannot read"):
            load_manifest(tmp_path / "missing.yaml")
        bad = tmp_path / "bad.yaml"
        bad.write_text("cases: [\n")
        with pytest.raises(ManifestError, match="invalid YAML"):
            load_manifest(bad)


class TestSelection:
    def test_select(self):
        loaded = manifest(case(case="inputs.run"), case(case="inputs.parse-enum", kind="parse"),
                          case(case="invalid.empty", kind="invalid"))
        assert [c.id for c in loaded.select("inputs")] == ["inputs.run", "inputs.parse-enum"]
        assert [c.id for c in loaded.select("inputs.*")] == ["inputs.run", "inputs.parse-enum"]
        assert [c.id for c in loaded.select("*empty")] == ["invalid.empty"]
        assert [c.id for c in loaded.select(kind="parse")] == ["inputs.parse-enum"]
        assert [c.id for c in loaded.select("inputs", kind="invalid")] == []
        assert loaded.get("invalid.empty").kind == "invalid"
        with pytest.raises(ManifestError):
            loaded.get("nope")


def test_run_targets():
    assert parse_run_target("io.kestra.tests/restart-each") == RunTarget("io.kestra.tests", "restart-each", None)
    assert parse_run_target("io.kestra.tests/sleep until RUNNING").until == "RUNNING"
    assert parse_run_target("start execution1 and wait until RUNNING") is None
    assert parse_run_target("") is None


@pytest.mark.skipif(not (CORPUS / "manifest.yaml").exists(), reason="corpus not present")
class TestCorpusManifest:
    def test_loads_every_case(self):
        loaded = load_manifest(CORPUS / "manifest.yaml")
        raw = yaml.safe_load((CORPUS / "manifest.yaml").read_text())
        assert len(loaded.cases) == len(raw["cases"])
        assert {c.kind for c in loaded.cases} <= set(KINDS)
        for loaded_case in loaded.cases:
            assert (CORPUS / loaded_case.file).exists(), loaded_case.file
            for other in loaded_case.also_load:
                assert (CORPUS / other).exists(), other
            for variant in loaded_case.variants:
                for relative in variant.input_files.values():
                    assert (CORPUS / relative).exists(), relative
                assert not any(k.startswith("$") for k in (variant.inputs or {}))

    def test_shared_inputs_resolved(self):
        loaded = load_manifest(CORPUS / "manifest.yaml")
        absent = loaded.get("inputs.optional-absent-is-null").variants[0].inputs
        assert "bool" not in absent and absent["string"] == "myString"
        missing = loaded.get("inputs.missing-required").variants[0].inputs
        assert missing["string"] is None
        variants = loaded.get("inputs.validated-int-bad").variants
        assert [v.inputs["validatedInt"] for v in variants] == ["9", "21"]
        assert loaded.get("inputs.validated-time-bad").variants[0].inputs["validatedTime"] == "00:00:01"


class TestExpectationForms:
    def test_paths_are_expanded_in_every_block(self):
        loaded = manifest(case(expect={"taskRunList[1].state": "FAILED"}, steps=[
            {"run": "ns/f", "expect": {"final": {"taskRuns.a.state": "SUCCESS"}}}]))
        only = loaded.cases[0]
        assert only.variants[0].expect == {"taskRunList": [{"index": 1, "state": "FAILED"}]}
        assert only.steps[0].expect == {"final": {"taskRuns": {"a": {"state": "SUCCESS"}}}}
        assert only.form_errors == []

    def test_an_unknown_form_fails_its_case_not_the_manifest(self):
        loaded = manifest(case(expect={"taskRuns.a[0]": 1}), {"case": "d", "kind": "engine", "file": "x.yaml"})
        bad, good = loaded.cases
        assert bad.form_errors and "only known after taskRunList" in bad.form_errors[0]
        assert good.form_errors == []
