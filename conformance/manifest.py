"""Load a conformance manifest (``kestra-flows/manifest.yaml``) into cases ready to run.

Resolution done here, so that the runner never looks at the raw YAML:

* ``inputs: {$ref: InputsTest.inputs, key: override, $remove: [k]}`` → the shared map under
  ``sharedInputs.<ref>.values``, then the overrides (a ``null`` override keeps the key with ``None``:
  the Java test passed ``null``), then the removals;
* ``variants``: each variant inherits the case's ``inputs``, ``inputFiles``, ``rawInputs`` and
  ``executionLabels`` unless it sets its own, and carries its own ``expect``;
* ``runs``: successive executions of the same flow, each with its ``expect``;
* ``steps``: an ordered scenario of ``run``, ``action`` and ``wait`` items with their ``expect``.

Nothing here imports Django.
"""
from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .grammar import GrammarError, expand_all

__all__ = [
    "KINDS",
    "Case",
    "Manifest",
    "ManifestError",
    "RunTarget",
    "Step",
    "Variant",
    "load_manifest",
    "parse_manifest",
    "resolve_inputs_spec",
    "parse_run_target",
]

KINDS = ("engine", "parse", "invalid", "api", "cli", "no-assertion")

#: ``run`` values with a fixed meaning; any other text is a scenario described in prose.
RUN_MODES = ("runOneUntilPaused", "runOneUntilRunning", "parseInputsOnly", "parseOnly")


class ManifestError(ValueError):
    """The manifest cannot be read or a case refers to something that does not exist."""


@dataclass
class Variant:
    """One set of inputs and its expectations (a case without ``variants`` has exactly one)."""

    index: int | None
    inputs: dict[str, Any] | None
    input_files: dict[str, str]
    raw_inputs: bool
    execution_labels: dict[str, Any] | None
    expect: Any

    @property
    def label(self) -> str:
        return "" if self.index is None else f"variant {self.index + 1}"


@dataclass
class RunTarget:
    """``io.kestra.tests/pause until PAUSED`` → namespace, flow id and the state to wait for."""

    namespace: str
    flow_id: str
    until: str | None = None


@dataclass
class Step:
    """One item of a ``steps`` scenario."""

    index: int
    run: str | None = None
    action: str | None = None
    wait: str | None = None
    expect: Any = None

    @property
    def label(self) -> str:
        what = self.run or self.action or (f"wait {self.wait}" if self.wait else "expect")
        return f"step {self.index + 1} ({what})"

    def target(self) -> RunTarget | None:
        return parse_run_target(self.run) if self.run else None


@dataclass
class Case:
    """A manifest entry with its inputs resolved."""

    id: str
    kind: str
    file: str
    raw: dict[str, Any]
    namespace: str | None = None
    flow_id: str | None = None
    flow_ref: str | None = None
    also_load: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    test_only_plugins: list[str] = field(default_factory=list)
    fixtures: dict[str, Any] | None = None
    run: str | None = None
    level: str | None = None
    execution_id: str | None = None
    setup: str | None = None
    inputs: dict[str, Any] | None = None
    input_files: dict[str, str] = field(default_factory=dict)
    raw_inputs: bool = False
    execution_labels: dict[str, Any] | None = None
    expect: Any = None
    variants: list[Variant] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: str | None = None
    #: expectation forms the grammar could not read: the case fails with them, never skips them
    form_errors: list[str] = field(default_factory=list)

    @property
    def run_mode(self) -> str | None:
        """One of :data:`RUN_MODES`, ``None`` (run to termination) or ``"scenario"`` (prose)."""
        if self.run is None:
            return None
        return self.run if self.run in RUN_MODES else "scenario"

    def has_expectations(self) -> bool:
        return any(v.expect is not None for v in self.variants) or bool(self.runs) or bool(self.steps)


@dataclass
class Manifest:
    cases: list[Case]
    shared_inputs: dict[str, dict[str, Any]]
    fixture_files: dict[str, str]
    upstream: dict[str, Any]
    path: Path | None = None

    def select(self, pattern: str | None = None, kind: str | None = None) -> list[Case]:
        """Cases whose id matches ``pattern`` (glob, or substring when it has no wildcard) and ``kind``."""
        out = []
        for case in self.cases:
            if kind and case.kind != kind:
                continue
            if pattern:
                wildcard = any(ch in pattern for ch in "*?[")
                if wildcard and not fnmatch.fnmatchcase(case.id, pattern):
                    continue
                if not wildcard and pattern not in case.id:
                    continue
            out.append(case)
        return out

    def get(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise ManifestError(f"unknown case '{case_id}'")


# ---------------------------------------------------------------------------------------------------------
# Resolution helpers
# ---------------------------------------------------------------------------------------------------------

def resolve_inputs_spec(spec: Any, shared: Mapping[str, Mapping[str, Any]], where: str = "") -> dict[str, Any] | None:
    """Expand ``$ref`` / ``$remove`` of an ``inputs`` map; ``None`` stays ``None`` (no inputs given)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ManifestError(f"{where}: inputs must be a map, got {type(spec).__name__}")
    out: dict[str, Any] = {}
    ref = spec.get("$ref")
    if ref is not None:
        if ref not in shared:
            raise ManifestError(f"{where}: unknown sharedInputs reference '{ref}'")
        out.update(copy.deepcopy(dict(shared[ref].get("values") or {})))
    for key, value in spec.items():
        if key in ("$ref", "$remove"):
            continue
        out[str(key)] = copy.deepcopy(value)
    removed = spec.get("$remove") or []
    if isinstance(removed, str):
        removed = [removed]
    for key in removed:
        out.pop(str(key), None)
    return out


_TARGET = re.compile(r"^\s*(?P<ns>[\w.\-]+)/(?P<flow>[\w.\-]+)(?:\s+until\s+(?P<until>[A-Z_]+))?\s*$")


def parse_run_target(text: str) -> RunTarget | None:
    """``'io.kestra.tests/sleep until RUNNING'`` → RunTarget; ``None`` for other prose."""
    match = _TARGET.match(text or "")
    if not match:
        return None
    return RunTarget(match.group("ns"), match.group("flow"), match.group("until"))


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ManifestError(f"{where}: expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def _file_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where}: inputFiles must be a map")
    return {str(k): str(v) for k, v in value.items()}


def _case(entry: Mapping[str, Any], shared: Mapping[str, Mapping[str, Any]]) -> Case:
    case_id = entry.get("case")
    if not case_id:
        raise ManifestError(f"a case has no id: {entry!r:.120}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ManifestError(f"{case_id}: unknown kind {kind!r}")
    if not entry.get("file"):
        raise ManifestError(f"{case_id}: no file")
    inputs = resolve_inputs_spec(entry.get("inputs"), shared, case_id)
    input_files = _file_map(entry.get("inputFiles"), case_id)
    raw_inputs = bool(entry.get("rawInputs", False))
    labels = entry.get("executionLabels")
    case = Case(
        id=str(case_id), kind=str(kind), file=str(entry["file"]), raw=dict(entry),
        namespace=entry.get("namespace"), flow_id=entry.get("flowId"), flow_ref=entry.get("flowRef"),
        also_load=_string_list(entry.get("alsoLoad"), case_id),
        needs=_string_list(entry.get("needs"), case_id),
        test_only_plugins=_string_list(entry.get("testOnlyPlugins"), case_id),
        fixtures=entry.get("fixtures"), run=entry.get("run"), level=entry.get("level"),
        execution_id=entry.get("executionId"), setup=entry.get("setup"),
        inputs=inputs, input_files=input_files, raw_inputs=raw_inputs,
        execution_labels=dict(labels) if isinstance(labels, Mapping) else None,
        expect=None, notes=entry.get("notes"),
    )

    def expanded(value: Any, where: str) -> Any:
        try:
            return expand_all(copy.deepcopy(value))
        except GrammarError as exc:
            case.form_errors.append(f"{where}: {exc}")
            return value

    case.expect = expanded(entry.get("expect"), "expect")
    if entry.get("variants"):
        for index, variant in enumerate(entry["variants"]):
            where = f"{case_id} variant {index + 1}"
            if not isinstance(variant, Mapping):
                raise ManifestError(f"{where}: must be a map")
            case.variants.append(Variant(
                index=index,
                inputs=resolve_inputs_spec(variant["inputs"], shared, where) if "inputs" in variant else inputs,
                input_files=_file_map(variant["inputFiles"], where) if "inputFiles" in variant else dict(input_files),
                raw_inputs=bool(variant.get("rawInputs", raw_inputs)),
                execution_labels=(dict(variant["executionLabels"]) if "executionLabels" in variant
                                  else case.execution_labels),
                expect=expanded(variant.get("expect"), f"variant {index + 1} expect"),
            ))
    else:
        case.variants.append(Variant(None, inputs, dict(input_files), raw_inputs, case.execution_labels,
                                     case.expect))
    for index, run in enumerate(entry.get("runs") or []):
        case.runs.append(expanded((run or {}).get("expect"), f"run {index + 1} expect"))
    for index, step in enumerate(entry.get("steps") or []):
        if not isinstance(step, Mapping):
            raise ManifestError(f"{case_id} step {index + 1}: must be a map")
        case.steps.append(Step(index=index, run=step.get("run"), action=step.get("action"),
                               wait=None if step.get("wait") is None else str(step.get("wait")),
                               expect=expanded(step.get("expect"), f"step {index + 1} expect")))
    return case


def parse_manifest(data: Mapping[str, Any], path: Path | None = None) -> Manifest:
    """Build a :class:`Manifest` from the loaded YAML document."""
    if not isinstance(data, Mapping) or not isinstance(data.get("cases"), list):
        raise ManifestError("a manifest is a map with a `cases` list")
    shared = {str(k): dict(v or {}) for k, v in (data.get("sharedInputs") or {}).items()}
    cases = [_case(entry, shared) for entry in data["cases"]]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ManifestError(f"duplicate case id '{case.id}'")
        seen.add(case.id)
    return Manifest(cases=cases, shared_inputs=shared, fixture_files=dict(data.get("fixtureFiles") or {}),
                    upstream=dict(data.get("upstream") or {}), path=path)


def load_manifest(path: str | Path) -> Manifest:
    """Read and resolve a manifest file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: invalid YAML: {exc}") from exc
    return parse_manifest(data, path)
