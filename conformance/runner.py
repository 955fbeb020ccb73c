"""Run manifest cases against a live Celestra (database, Celery runtime, REST API, CLI).

One :class:`ConformanceRunner` runs cases one after the other on a scratch database; between two
cases every row of the project's apps is deleted and the parsed-flow cache is cleared, so that
each case starts from nothing. How each kind runs:

* ``invalid``: the flow is parsed; a :class:`~orchestrator.engine.flow.FlowValidationError` is
  expected and its messages and violation count are compared (API-level ones go through the API).
* ``parse``: parse-only checks on the flow model, or typed input resolution
  (:func:`~orchestrator.engine.inputs.resolve_inputs`) with the case's inputs.
* ``engine``: the ``alsoLoad`` flows and the case's flow are deployed, an execution is created
  with the case's inputs and labels, the runner waits for its end (or for PAUSED/RUNNING) and the
  expectations are checked against the execution JSON, its logs and its child executions.
  Multi-run cases and ``steps`` scenarios drive restarts, replays, state changes and resumes
  through the REST API.
* ``no-assertion``: the flow must deploy and, when it can start without inputs, terminate.
* ``api`` / ``cli``: requests through Django's test client under ``/api/v1/main``; ``flow validate``
  through ``call_command``.

Anything the runner cannot drive fails with the reason (never a silent skip); a crash inside one
case fails that case with the exception and the run goes on.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import yaml

from .grammar import Call, ExecutionRef, GrammarError, TaskRunRef, is_call, parse_call
from .expectations import EXECUTION_KEYS, ExecutionView, check_execution, reference_resolver
from .manifest import Case, Manifest, Step, Variant, parse_run_target
from .matchers import MatchContext, Mismatch, check, describe, is_description

__all__ = ["CaseFailure", "CaseResult", "ConformanceRunner", "conformance_environment", "summarize"]

TERMINATED = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED")
API = "/api/v1/main"

#: Environment the upstream tests assume (corpus README, "Environment the upstream tests assume").
ENVIRONMENT = {
    "KESTRA_TEST1": "true",
    "KESTRA_TEST2": "Pass by env",
    "SECRET_MY_SECRET": base64.b64encode(b'{"secretKey":"secretValue"}').decode(),
    "SECRET_WEBHOOK_KEY": base64.b64encode(b"secretKey").decode(),
    "SECRET_NON_B64_SECRET": "some secret value",
    "SECRET_PASSWORD": "cGFzc3dvcmQ=",
    "SECRET_NEW_LINE": ("cGFzc3dvcmR2ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2\n"
                        "ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2ZXJ5dmVyeXZleXJsb25ncGFzc3dvcmR2ZXJ5dmVyeXZl\n"
                        "eXJsb25n"),
}
GLOBALS = {"string": "string", "int": 1, "bool": True, "nested": {"int": 2}}
KESTRA_URL = "https://mysuperhost.com/subpath"
#: kestra.encryption.secret-key of Kestra's test configuration
KESTRA_ENCRYPTION_KEY = "I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"

#: Keys of engine expectations handled by the runner itself (phases, other executions, scenarios).
PHASE_KEYS = frozenset({"atPause", "final", "afterAction", "atCreation", "execution1", "execution2"})
OTHER_EXECUTION_KEYS = frozenset({
    "executionsCreated", "terminalStatesOfAllExecutions", "triggered", "triggeredExecutionsWithin",
    "triggeredExecutionWithin", "skippedExecution", "triggerStateAfter", "sideEffect",
})


class CaseFailure(Exception):
    """A case cannot pass; ``category`` groups failures in the summary."""

    def __init__(self, reason: str, category: str | None = None):
        self.reason = reason
        self.category = category or reason.split(":", 1)[0]
        super().__init__(reason)


@dataclass
class CaseResult:
    case: str
    kind: str
    status: str  # "passed" | "failed"
    reason: str | None = None
    category: str | None = None
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "kind": self.kind, "status": self.status, "reason": self.reason,
                "category": self.category, "duration": round(self.duration, 3), "notes": self.notes}


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    """Totals, pass rate and failure categories (most frequent first)."""
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    categories: dict[str, int] = {}
    for result in results:
        if not result.passed:
            categories[result.category or "?"] = categories.get(result.category or "?", 0) + 1
    rate = (100.0 * passed / len(results)) if results else 0.0
    return {
        "total": len(results), "passed": passed, "failed": failed, "passRate": round(rate, 1),
        "failureCategories": dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _category(mismatch: Mismatch) -> str:
    path = getattr(mismatch, "origin", mismatch.path) or ""
    head = re.split(r"[.\[ (:]", path, maxsplit=1)[0]
    if "unsupported" in mismatch.message:
        return f"unsupported expectation {path.rsplit('.', 1)[-1]}"
    return f"mismatch {head}" if head else "mismatch"


def _prefixed(exc: Mismatch, prefix: str) -> Mismatch:
    """The same mismatch under a scenario label (``step 2 (...)``), keeping the original path for grouping."""
    wrapped = Mismatch(f"{prefix}: {exc.path}" if exc.path else prefix, exc.message)
    wrapped.origin = getattr(exc, "origin", exc.path)  # type: ignore[attr-defined]
    return wrapped


@contextmanager
def conformance_environment() -> Iterator[None]:
    """Environment variables, globals and URL the corpus assumes, restored afterwards."""
    from django.conf import settings

    conf = settings.CELESTRA
    prefix = conf.get("ENV_VARS_PREFIX") or "ENV_"
    env = dict(ENVIRONMENT)
    # {{ envs.test1 }} reads <prefix>TEST1: mirror Kestra's KESTRA_ variables under Celestra's prefix
    for key, value in ENVIRONMENT.items():
        if key.startswith("KESTRA_"):
            env[prefix + key[len("KESTRA_"):]] = value
    saved_env = {key: os.environ.get(key) for key in env}
    saved_conf = {key: conf.get(key) for key in ("GLOBALS", "URL")}
    os.environ.update(env)
    from orchestrator.engine import secrets_codec

    secrets_codec.set_key_override(KESTRA_ENCRYPTION_KEY)
    conf["GLOBALS"] = GLOBALS
    conf["URL"] = KESTRA_URL
    _clear_environment_caches()
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        conf.update(saved_conf)
        secrets_codec.set_key_override()
        _clear_environment_caches()


def missing_test_plugins(names: list[str]) -> list[str]:
    """The test-only types of ``names`` that the registry does not know (after :func:`load_test_plugins`)."""
    from orchestrator.engine.plugins import registered_types

    load_test_plugins()
    known = registered_types()
    return [name for name in names if name not in known]


def load_test_plugins() -> None:
    """Register Kestra's test-only types: only the runner does, never a production process."""
    from .plugins import load

    load()


def _clear_environment_caches() -> None:
    try:
        from orchestrator.runtime.environment import static_extras
    except Exception:  # noqa: BLE001 - the expression engine may be missing
        return
    static_extras.cache_clear()


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.05, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def _seconds(text: str) -> float:
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$", str(text))
    if not match:
        raise CaseFailure(f"cannot read duration '{text}'", "manifest")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value * 60 if match.group(2) == "m" else value


@dataclass
class HttpResult:
    status: int
    body: str
    json: Any = None
    request: str = ""
    #: the body sent, when a check refers to it ("<the same string, unparsed>")
    sent: Any = None

    @property
    def execution_id(self) -> str | None:
        if isinstance(self.json, Mapping) and isinstance(self.json.get("id"), str):
            return self.json["id"]
        return None


# ---------------------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------------------

_TRIGGER_SETUP = re.compile(r"trigger state for \((?P<ns>[^,\s]+),\s*(?P<flow>[^,\s]+),\s*(?P<trigger>[^)\s]+)\)"
                            r"\s+saved with disabled=(?P<disabled>true|false)")


def _trigger_state_setup(setup: str) -> tuple[str, str, str, bool] | None:
    """``Scheduler running; trigger state for (ns, flow, trigger) saved with disabled=true``."""
    match = _TRIGGER_SETUP.search(setup or "")
    if not match:
        return None
    return match["ns"], match["flow"], match["trigger"], match["disabled"] == "true"


class ConformanceRunner:
    """Runs cases of a manifest; see the module docstring."""

    def __init__(self, corpus: str | Path, manifest: Manifest, *, timeout: float = 60.0, stall: float = 20.0):
        self.corpus = Path(corpus)
        self.manifest = manifest
        self.timeout = timeout
        self.stall = stall
        self._client = None
        self._notes: list[str] = []
        load_test_plugins()

    # -- driving -------------------------------------------------------------------------------------

    def run(self, cases: list[Case], on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
        results = []
        for case in cases:
            result = self.run_case(case)
            results.append(result)
            if on_result:
                on_result(result)
        return results

    def run_case(self, case: Case) -> CaseResult:
        """Run one case in a thread, so that a case hung past its time budget cannot stall the run."""
        box: dict[str, CaseResult] = {}
        started = time.monotonic()

        def target() -> None:
            from django.db import connection

            try:
                box["result"] = self._run_case(case)
            finally:
                connection.close()

        thread = threading.Thread(target=target, name=f"conformance-{case.id}", daemon=True)
        thread.start()
        thread.join(self._hard_limit(case))
        if thread.is_alive():
            return CaseResult(case.id, case.kind, "failed", f"case still running after {self._hard_limit(case):.0f}s",
                              "timeout", time.monotonic() - started)
        return box.get("result") or CaseResult(case.id, case.kind, "failed", "no result", "crash",
                                               time.monotonic() - started)

    @staticmethod
    def _failed(case: Case, reason: str, category: str | None, started: float, notes: list[str]) -> CaseResult:
        if case.needs and not case.test_only_plugins:
            reason = f"{reason} [needs: {', '.join(case.needs)}]"
        return CaseResult(case.id, case.kind, "failed", reason, category, time.monotonic() - started, notes)

    def _hard_limit(self, case: Case) -> float:
        phases = max(1, len(case.steps), len(case.runs), len(case.variants))
        return self.timeout * (1 + phases) + 15

    def _run_case(self, case: Case) -> CaseResult:
        started = time.monotonic()
        notes: list[str] = []
        self._notes = notes
        try:
            self.reset()
            if case.form_errors:
                raise CaseFailure("unknown expectation form: " + "; ".join(case.form_errors), "unknown form")
            missing = missing_test_plugins(case.test_only_plugins)
            if missing:
                raise CaseFailure("needs Kestra test-only plugins: " + ", ".join(missing),
                                  "needs Kestra test-only plugins")
            handler = {
                "invalid": self._invalid, "parse": self._parse, "engine": self._engine,
                "no-assertion": self._no_assertion, "api": self._api, "cli": self._cli,
            }[case.kind]
            if "config:kestra.encryption.secret-key UNSET" in case.needs:
                from orchestrator.engine.secrets_codec import key_override

                with key_override(None):
                    handler(case, notes)
            else:
                handler(case, notes)
        except CaseFailure as exc:
            return self._failed(case, exc.reason, exc.category, started, notes)
        except Mismatch as exc:
            return self._failed(case, str(exc), _category(exc), started, notes)
        except Exception as exc:  # noqa: BLE001 - one crashing case must not stop the run
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
            return self._failed(case, f"{type(exc).__name__}: {exc}{where}", f"exception {type(exc).__name__}",
                                started, notes)
        return CaseResult(case.id, case.kind, "passed", None, None, time.monotonic() - started, notes)

    # -- state -----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Delete every row of the project's apps and clear the parsed-flow cache."""
        from django.apps import apps
        from django.db import transaction
        from django.db.models import ProtectedError

        pending = [model for label in ("flows_app", "storage_app", "secrets_app", "django_celery_beat")
                   if label in {c.label for c in apps.get_app_configs()}
                   for model in apps.get_app_config(label).get_models()]
        for _ in range(4):
            left = []
            for model in pending:
                try:
                    with transaction.atomic():
                        model.objects.all().delete()
                except ProtectedError:
                    left.append(model)
            pending = left
            if not pending:
                break
        try:
            from orchestrator.runtime.flows import clear_cache

            clear_cache()
        except ImportError:
            pass

    def path(self, relative: str) -> Path:
        return self.corpus / relative

    def source(self, relative: str) -> str:
        try:
            return self.path(relative).read_text(encoding="utf-8")
        except OSError as exc:
            raise CaseFailure(f"cannot read corpus file {relative}: {exc}", "corpus") from None

    # -- shared helpers --------------------------------------------------------------------------------

    def deploy(self, relative: str) -> Any:
        """Deploy a corpus flow; a rejected flow fails the case with the validation errors."""
        from flows_app.services import deploy_flow

        try:
            return deploy_flow(self.source(relative)).parsed
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "FlowValidationError":
                raise CaseFailure(f"flow {relative} rejected: {exc}", "flow rejected") from None
            raise CaseFailure(f"deploy of {relative} failed: {type(exc).__name__}: {exc}",
                              f"deploy failed {type(exc).__name__}") from None

    def prepare(self, case: Case, notes: list[str]) -> Any:
        """Fixtures, then ``alsoLoad`` flows, then the case's flow; returns the parsed case flow."""
        self.apply_fixtures(case.fixtures, notes)
        for other in case.also_load:
            self.deploy(other)
        return self.deploy(case.file)

    def apply_fixtures(self, fixtures: Mapping[str, Any] | None, notes: list[str]) -> None:
        if not fixtures:
            return
        for kind, spec in fixtures.items():
            if kind == "kv":
                from storage_app.models import KVEntry

                for key, value in (spec.get("entries") or {}).items():
                    KVEntry.objects.create(namespace=spec["namespace"], key=key, value=value,
                                           type=_kv_type(value))
            elif kind == "namespaceFiles":
                from storage_app.models import NamespaceFile

                for path, content in (spec.get("files") or {}).items():
                    NamespaceFile.objects.create(namespace=spec["namespace"], path="/" + str(path).lstrip("/"),
                                                 content=str(content).encode())
            else:
                raise CaseFailure(f"unsupported fixture: {kind}", f"unsupported fixture {kind}")

    def materialize(self, inputs: Mapping[str, Any] | None, input_files: Mapping[str, str]) -> dict[str, Any]:
        """Case inputs for ``create_execution``: uploaded files become :class:`InputFile` values."""
        from orchestrator.engine.inputs import InputFile

        out: dict[str, Any] = {}
        for key, value in (inputs or {}).items():
            if key in input_files:
                continue
            if is_description(value):
                local = re.search(r"(fixtures/[\w.\-]+)", value)
                if local:  # the Java test passed a local path as text
                    out[key] = str(self.path(local.group(1)))
                continue
            out[key] = value
        for key, relative in input_files.items():
            if inputs is not None and key not in inputs and not _mentioned(key, inputs):
                # inputFiles shared by the variants of a case may name inputs a variant removed
                continue
            path = self.path(relative)
            try:
                out[key] = InputFile(path.name, path.read_bytes())
            except OSError as exc:
                raise CaseFailure(f"cannot read input file {relative}: {exc}", "corpus") from None
        return out

    def start(self, namespace: str, flow_id: str, variant: Variant | None) -> str:
        """Create an execution of a deployed flow with the variant's inputs and labels."""
        from flows_app.services import create_execution

        inputs = self.materialize(variant.inputs, variant.input_files) if variant else {}
        labels = {str(k): str(v) for k, v in ((variant.execution_labels if variant else None) or {}).items()}
        try:
            execution = create_execution(namespace, flow_id, inputs, labels=labels or None,
                                         raw_inputs=bool(variant and variant.raw_inputs))
        except Exception as exc:  # noqa: BLE001
            if not inputs and _only_missing_required(exc):
                return self._start_unvalidated(namespace, flow_id, labels)
            raise _CreationFailed(exc) from None
        return execution.id

    def _start_unvalidated(self, namespace: str, flow_id: str, labels: dict[str, str]) -> str:
        """Start an execution without inputs, as Kestra's test runner does when a test gives none.

        ``runOne(namespace, flowId)`` (and ``@ExecuteFlow``) never reads execution inputs: the
        execution starts with no inputs even when the flow declares required ones, and rendering
        falls back to the declared defaults. ``create_execution`` validates inputs (as the API does),
        so this builds the execution the way it does, minus the input resolution.
        """
        from flows_app.services import create_execution

        execution = create_execution(namespace, flow_id, {}, labels=labels or None, validate_inputs=False)
        self._notes.append("started without input validation (the Java test gives no inputs: runOne(namespace, "
                           "flowId) never reads them)")
        return execution.id

    def wait(self, execution_id: str, deadline: Deadline, until: tuple[str, ...] = TERMINATED,
             what: str = "execution") -> None:
        """Wait until the execution is in one of ``until``.

        Gives up at the deadline, or earlier when the execution is *stalled*: nothing about it (row,
        state, timer, task runs and their states) changed for ``stall`` seconds while no timer is
        pending. The longest wait a corpus flow makes on purpose is 15 s, so a stalled execution is
        reported after 20 s instead of holding the run for the whole timeout.
        """
        from flows_app import models

        wanted = set(until)
        last_signature: tuple | None = None
        changed_at = time.monotonic()
        next_probe = 0.0
        while True:
            state = models.Execution.objects.filter(pk=execution_id).values_list("state", flat=True).first()
            if state in wanted:
                if state in TERMINATED:
                    self._settle_task_runs(execution_id, deadline)
                return
            now = time.monotonic()
            if state is None:
                raise CaseFailure(f"{what} {execution_id} does not exist", "execution missing")
            if deadline.expired():
                self._stuck(execution_id, what, until, f"after {deadline.seconds:.0f}s", "timeout")
            if self.stall and now >= next_probe:
                next_probe = now + 1.0
                signature = self._signature(execution_id)
                if signature != last_signature:
                    last_signature, changed_at = signature, now
                elif now - changed_at >= self.stall and not signature[2]:
                    self._stuck(execution_id, what, until, f"with no progress for {self.stall:.0f}s", "stalled")
            time.sleep(0.02)

    @staticmethod
    def _settle_task_runs(execution_id: str, deadline: Deadline, grace: float = 10.0) -> None:
        """Give task runs still going in a terminated execution (listeners) a moment to end.

        Kestra's test runner waits until the execution *and its listeners* are terminated. After
        ``grace`` seconds the check goes on with what is there, so that a task run that never
        ends is reported as a mismatch rather than as a timeout.
        """
        from flows_app import models

        limit = Deadline(min(grace, deadline.remaining()))
        while not limit.expired():
            if not models.TaskRun.objects.filter(execution_id=execution_id).exclude(state__in=TERMINATED).exists():
                return
            time.sleep(0.05)

    @staticmethod
    def _signature(execution_id: str) -> tuple:
        """What changes when an execution makes progress; ``[2]`` tells whether a timer is pending."""
        from datetime import datetime, timedelta, timezone

        from flows_app import models

        row = models.Execution.objects.filter(pk=execution_id).values_list("updated", "state", "wake_at").first()
        if row is None:
            return (None, None, False, ())
        updated, state, wake_at = row
        pending = wake_at is not None and wake_at > datetime.now(timezone.utc) - timedelta(seconds=5)
        runs = tuple(models.TaskRun.objects.filter(execution_id=execution_id).order_by("seq")
                     .values_list("id", "state"))
        return (updated, state, pending, runs)

    def _stuck(self, execution_id: str, what: str, until: tuple[str, ...], how: str, category: str) -> None:
        view = self.view(execution_id, children=False)
        runs = ", ".join(f"{r.get('taskId')}={(r.get('state') or {}).get('current')}" for r in view.task_runs)
        raise CaseFailure(f"timeout: {what} still {view.state} {how} "
                          f"(waiting for {'/'.join(until) if until != TERMINATED else 'a terminal state'}; "
                          f"task runs: {runs or 'none'})", category)

    def view(self, execution_id: str, children: bool = True) -> ExecutionView:
        """The execution's JSON, its logs and (recursively) its child executions."""
        from flows_app import models
        from flows_app.services import load_execution

        data = load_execution(execution_id).to_json()
        logs = [entry.to_json() for entry in models.LogEntry.objects.filter(execution_id=execution_id)
                .order_by("timestamp", "id")]
        kids: list[ExecutionView] = []
        if children:
            for child_id in (models.Execution.objects.filter(parent_id=execution_id).order_by("created", "id")
                             .values_list("id", flat=True)):
                kids.append(self.view(child_id))
        return ExecutionView(data, logs, kids)

    def flow_executions(self, namespace: str, flow_id: str) -> list[str]:
        from flows_app import models

        return list(models.Execution.objects.filter(namespace=namespace, flow_id=flow_id)
                    .order_by("created", "id").values_list("id", flat=True))

    def context(self, root: ExecutionView, original: ExecutionView | None = None,
                extra: Mapping[str, Any] | None = None) -> MatchContext:
        return MatchContext(resolve=reference_resolver(root, original, extra), read_file=_read_storage)

    def check_view(self, expect: Mapping[str, Any] | None, view: ExecutionView, path: str,
                   original: ExecutionView | None = None) -> None:
        check_execution(expect, view, self.context(view, original), path, original)

    # -- invalid ---------------------------------------------------------------------------------------

    def _invalid(self, case: Case, notes: list[str]) -> None:
        expect = dict(case.expect or {})
        if case.level == "api":
            return self._invalid_api(case, expect, notes)
        mode = expect.pop("invalid", None)
        if mode == "update":
            return self._invalid_update(case, expect, notes)
        from orchestrator.runtime.flows import parse

        try:
            flow = parse(self.source(case.file))
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ != "FlowValidationError":
                raise CaseFailure(f"parse raised {type(exc).__name__}: {exc} (expected FlowValidationError)",
                                  "wrong exception") from None
            kind = getattr(exc, "kind", None)
            if mode in ("parse", "validate") and kind and kind != mode:
                notes.append(f"rejected at the {kind} stage, Kestra rejects it at the {mode} stage")
            check_violations(expect, exc)
            return
        raise CaseFailure(f"flow accepted (namespace={flow.namespace}, id={flow.id}); expected a rejection"
                          + (f" ({mode})" if mode else ""), "flow accepted")

    def _invalid_update(self, case: Case, expect: dict[str, Any], notes: list[str]) -> None:
        match = re.search(r"existing flow (\S+\.ya?ml)", case.run or "")
        if not match:
            raise CaseFailure(f"cannot read the update scenario: {case.run}", "manifest")
        existing = self.deploy(match.group(1))
        from flows_app.services import deploy_flow

        try:
            deploy_flow(self.source(case.file), expect=(existing.namespace, existing.id))
        except Exception as exc:  # noqa: BLE001
            check_violations(expect, exc)
            return
        raise CaseFailure("update accepted; expected a rejection", "flow accepted")

    def _invalid_api(self, case: Case, expect: dict[str, Any], notes: list[str]) -> None:
        expect.pop("invalid", None)
        run = case.run or ""
        source = self.source(case.file)
        if "PUT" in run:
            from flows_app.services import deploy_flow

            existing = re.search(r"\((\S+)/(\S+)\)", run)
            if not existing:
                raise CaseFailure(f"cannot read the update scenario: {run}", "manifest")
            namespace, flow_id = existing.group(1), existing.group(2)
            deploy_flow(f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n  - id: hello\n"
                        f"    type: io.kestra.plugin.core.log.Log\n    message: Hello\n")
            notes.append(f"the existing flow {namespace}/{flow_id} is a stand-in for webserver flows/simpleFlow.yaml")
            result = self.http("PUT", f"/flows/{namespace}/{flow_id}", raw=source, content_type="application/x-yaml")
        elif "/flows/validate" in run:
            result = self.http("POST", "/flows/validate", raw=source, content_type="application/x-yaml")
        else:
            result = self.http("POST", "/flows", raw=source, content_type="application/x-yaml")
        self.check_http(expect, result, "")

    # -- parse -----------------------------------------------------------------------------------------

    def _parse(self, case: Case, notes: list[str]) -> None:
        from orchestrator.runtime.flows import parse

        source = self.source(case.file)
        try:
            flow = parse(source)
        except Exception as exc:  # noqa: BLE001
            raise CaseFailure(f"flow rejected: {exc}", "flow rejected") from None
        if case.run_mode == "parseOnly":
            check_parsed_flow(case.expect or {}, flow, source)
            return
        for variant in case.variants:
            try:
                self._parse_inputs(case, variant, flow)
            except Mismatch as exc:
                raise (_prefixed(exc, variant.label) if variant.label else exc) from None

    def _parse_inputs(self, case: Case, variant: Variant, flow: Any) -> None:
        from orchestrator.engine.errors import InputValidationError
        from orchestrator.engine.ids import new_id
        from orchestrator.engine.inputs import resolve_inputs
        from storage_app.storage import ExecutionFiles

        expect = dict(variant.expect or {})
        execution_id = case.execution_id or new_id()
        render, context = _renderer(flow, execution_id)
        try:
            typed = resolve_inputs(flow.inputs or [], self.materialize(variant.inputs, variant.input_files),
                                   render=render, context=context, files=ExecutionFiles(),
                                   namespace=flow.namespace, flow_id=flow.id, execution_id=execution_id,
                                   raw=variant.raw_inputs)
            from orchestrator.engine.secrets_codec import encrypt_secret_inputs

            typed = encrypt_secret_inputs(flow.inputs or [], typed)
        except InputValidationError as exc:
            if "error" not in expect:
                raise CaseFailure(f"input validation failed: {exc}", "input validation failed") from None
            check_input_error(expect.pop("error"), exc, "error")
            _no_more(expect, "")
            return
        if "error" in expect:
            raise Mismatch("error", f"expected an input error {describe(expect['error'])}, "
                                    f"got typed inputs {describe(typed, 300)}")
        ctx = MatchContext(read_file=_read_storage)
        for key, expected in expect.items():
            if key == "typedInputs":
                check(expected, typed, key, ctx)
            elif key == "typedInputsHasKey":
                check({"hasKey": list(expected or [])}, typed, key, ctx)
            else:
                raise Mismatch(key, "unsupported expectation")

    # -- engine ----------------------------------------------------------------------------------------

    def _engine(self, case: Case, notes: list[str]) -> None:
        trigger_setup = _trigger_state_setup(case.setup) if case.setup else None
        if case.setup and trigger_setup is None:
            raise CaseFailure(f"unsupported setup: {case.setup}", "unsupported setup")
        flow = self.prepare(case, notes)
        if trigger_setup is not None:
            from orchestrator.runtime.schedules import set_trigger_disabled

            set_trigger_disabled(*trigger_setup)
        if case.steps:
            return self._scenario(case, flow, notes)
        if case.runs:
            for number, expect in enumerate(case.runs):
                deadline = Deadline(self.timeout)
                execution_id = self._start_checked(flow.namespace, flow.id, case.variants[0])
                self.wait(execution_id, deadline)
                self._check_final(dict(expect or {}), execution_id, f"run {number + 1}", notes, deadline)
            return
        for variant in case.variants:
            prefix = variant.label
            self._engine_variant(case, flow, variant, prefix, notes)

    def _start_checked(self, namespace: str, flow_id: str, variant: Variant | None) -> str:
        try:
            return self.start(namespace, flow_id, variant)
        except _CreationFailed as failed:
            raise CaseFailure(f"execution not created: {type(failed.error).__name__}: {failed.error}",
                              f"execution not created ({type(failed.error).__name__})") from None

    def _engine_variant(self, case: Case, flow: Any, variant: Variant, prefix: str, notes: list[str]) -> None:
        expect = dict(variant.expect or {})
        deadline = Deadline(self.timeout)
        if "execution1" in expect or "execution2" in expect:
            return self._concurrency(case, flow, variant, expect)
        if "atCreation" in expect:
            return self._scheduled(case, flow, expect, notes)
        if "skippedExecution" in expect:
            raise CaseFailure("unsupported: skip-executions configuration", "unsupported skipExecutions")
        trigger_state_after = expect.pop("triggerStateAfter", None)
        if "triggeredExecutionWithin" in expect:
            return self._triggered_self(flow, expect, deadline)
        try:
            execution_id = self.start(flow.namespace, flow.id, variant)
        except _CreationFailed as failed:
            if "error" in expect:
                check_input_error(expect.pop("error"), failed.error, _join(prefix, "error"))
                return
            raise CaseFailure(f"execution not created: {type(failed.error).__name__}: {failed.error}",
                              f"execution not created ({type(failed.error).__name__})") from None
        until = {"runOneUntilPaused": ("PAUSED",), "runOneUntilRunning": ("RUNNING",)}.get(case.run_mode or "")
        if "atPause" in expect or until:
            self.wait(execution_id, deadline, until=tuple(set(until or ("PAUSED",)) | set(TERMINATED)))
            at_pause = expect.pop("atPause", None)
            self.check_view(at_pause, self.view(execution_id), _join(prefix, "atPause"))
            if "final" in expect:
                self.wait(execution_id, Deadline(self.timeout))
                self.check_view(expect.pop("final"), self.view(execution_id), _join(prefix, "final"))
            if "afterAction" in expect:
                self._after_action(execution_id, expect.pop("afterAction"), _join(prefix, "afterAction"))
            _no_more(expect, prefix)
            return
        self.wait(execution_id, deadline)
        self._check_final(expect, execution_id, prefix, notes, deadline)
        if trigger_state_after is not None:
            self._check_trigger_state(flow, dict(trigger_state_after), _join(prefix, "triggerStateAfter"))

    def _check_trigger_state(self, flow: Any, spec: dict[str, Any], path: str) -> None:
        """The stored state of one of the flow's triggers (``{triggerId, disabled}``)."""
        from orchestrator.runtime.schedules import TriggerNotFound, get_state

        trigger_id = spec.pop("triggerId")
        try:
            state = get_state(flow.namespace, flow.id, trigger_id, create=False)
        except TriggerNotFound as exc:
            raise Mismatch(path, str(exc)) from None
        for key, expected in spec.items():
            actual = {"disabled": state.disabled, "executionId": state.execution_id}.get(key, Mismatch)
            if actual is Mismatch:
                raise Mismatch(f"{path}.{key}", "unsupported expectation")
            check(expected, actual, f"{path}.{key}")

    def _check_final(self, expect: dict[str, Any], execution_id: str, prefix: str, notes: list[str],
                     deadline: Deadline) -> None:
        """Expectations on a terminated execution, including the other executions it led to."""
        from flows_app import models

        row = models.Execution.objects.get(pk=execution_id)
        if "sideEffect" in expect:
            notes.append(f"side effect not checked directly: {expect.pop('sideEffect')}")
        if "executionsCreated" in expect or "terminalStatesOfAllExecutions" in expect:
            wanted = expect.get("executionsCreated")
            ids = self._settle_flow_executions(row.namespace, row.flow_id, wanted, Deadline(self.timeout))
            states = list(models.Execution.objects.filter(pk__in=ids).order_by("created", "id")
                          .values_list("state", flat=True))
            if "executionsCreated" in expect:
                check(expect.pop("executionsCreated"), len(ids), _join(prefix, "executionsCreated"))
            if "terminalStatesOfAllExecutions" in expect:
                check(expect.pop("terminalStatesOfAllExecutions"), states,
                      _join(prefix, "terminalStatesOfAllExecutions"))
        triggered = expect.pop("triggered", None)
        within = expect.pop("triggeredExecutionsWithin", None)
        view = self.view(execution_id)
        check_execution(_only_execution_keys(expect, prefix), view, self.context(view), prefix)
        if triggered is not None:
            self._check_triggered(triggered, view, _seconds(within) if within else 15.0, _join(prefix, "triggered"))

    def _settle_flow_executions(self, namespace: str, flow_id: str, wanted: int | None,
                                deadline: Deadline) -> list[str]:
        """The flow's executions once they are all terminal and nothing changed for a while.

        "A while" is 1 s once ``wanted`` executions exist, 10 s before (a new execution created by a
        retry may still come), so that a missing execution costs 10 s rather than the whole timeout.
        """
        from flows_app import models

        stable_since = time.monotonic()
        last: tuple = ()
        while not deadline.expired():
            rows = tuple(models.Execution.objects.filter(namespace=namespace, flow_id=flow_id)
                         .order_by("created", "id").values_list("id", "state"))
            if rows != last:
                stable_since, last = time.monotonic(), rows
            elif all(state in TERMINATED for _, state in rows):
                enough = wanted is None or len(rows) >= wanted
                if time.monotonic() - stable_since >= (1.0 if enough else 10.0):
                    break
            time.sleep(0.1)
        return [execution_id for execution_id, _ in last]

    def _check_triggered(self, triggered: Mapping[str, Any], source: ExecutionView, within: float, path: str) -> None:
        """Executions of other flows started by Flow triggers after ``source`` ended."""
        from flows_app import models

        deadline = Deadline(within)
        wanted = {flow_id: (spec or {}).get("count", 1) for flow_id, spec in triggered.items()}
        while True:
            found = {flow_id: list(models.Execution.objects.filter(flow_id=flow_id).exclude(pk=source.id)
                                   .order_by("created", "id").values_list("id", "state"))
                     for flow_id in triggered}
            ready = all(len(found[f]) >= wanted[f] and all(s in TERMINATED for _, s in found[f]) for f in found)
            if ready or deadline.expired():
                break
            time.sleep(0.1)
        for flow_id, spec in triggered.items():
            spec = dict(spec or {})
            where = f"{path}.{flow_id}"
            ids = [execution_id for execution_id, _ in found[flow_id]]
            if "count" in spec:
                check(spec.pop("count"), len(ids), f"{where}.count")
            if not ids:
                raise Mismatch(where, f"no execution of flow '{flow_id}' within {within:g}s")
            views = [self.view(execution_id) for execution_id in ids]
            if "inOrderFlowOutputs" in spec:
                check(spec.pop("inOrderFlowOutputs"), [v.data.get("outputs") for v in views],
                      f"{where}.inOrderFlowOutputs")
            check_execution(spec, views[0], self.context(source), where)

    def _triggered_self(self, flow: Any, expect: dict[str, Any], deadline: Deadline) -> None:
        """An execution of the flow itself emitted by one of its triggers within the window."""
        within = min(_seconds(expect.pop("triggeredExecutionWithin")), self.timeout)
        window = Deadline(within)
        while not window.expired():
            if self.flow_executions(flow.namespace, flow.id):
                break
            time.sleep(0.2)
        else:
            raise Mismatch("triggeredExecutionWithin", f"no execution of {flow.namespace}/{flow.id} "
                                                       f"within {within:g}s")
        _no_more(expect, "")

    def _concurrency(self, case: Case, flow: Any, variant: Variant, expect: dict[str, Any]) -> None:
        """``start execution1 and wait until RUNNING; then (start|emit) execution2 ...``."""
        text = case.run or ""
        deadline = Deadline(self.timeout)
        first = self._start_checked(flow.namespace, flow.id, variant)
        self.wait(first, deadline, until=("RUNNING", *TERMINATED), what="execution1")
        second = self._start_checked(flow.namespace, flow.id, variant)
        first_state_then = self.view(first, children=False).state
        if "wait until terminated" in text:
            self.wait(second, Deadline(self.timeout), what="execution2")
        for name, execution_id in (("execution1", first), ("execution2", second)):
            spec = dict(expect.pop(name, None) or {})
            if "whileSecondStarts" in spec:
                check(spec.pop("whileSecondStarts"), first_state_then, f"{name}.whileSecondStarts")
            if "final" in spec:
                self.wait(execution_id, Deadline(self.timeout), what=name)
                view = self.view(execution_id)
                check(spec.pop("final"), view.state, f"{name}.final")
            view = self.view(execution_id)
            self.check_view(spec, view, name)
        _no_more(expect, "")

    def _scheduled(self, case: Case, flow: Any, expect: dict[str, Any], notes: list[str]) -> None:
        """An execution created with ``scheduleDate = now + 1s`` through the API."""
        from datetime import datetime, timedelta, timezone

        when = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        result = self.http("POST", f"/executions/{flow.namespace}/{flow.id}?scheduleDate={when}", multipart={})
        if result.status != 200 or not result.execution_id:
            raise Mismatch("atCreation", f"POST with scheduleDate answered {result.status}: {result.body[:300]}")
        at_creation = dict(expect.pop("atCreation"))
        check_execution(at_creation, ExecutionView(result.json), self.context(ExecutionView(result.json)),
                        "atCreation")
        final = dict(expect.pop("final", None) or {})
        within = _seconds(final.pop("within")) if "within" in final else self.timeout
        self.wait(result.execution_id, Deadline(within))
        self.check_view(final, self.view(result.execution_id), "final")
        _no_more(expect, "")

    def _after_action(self, execution_id: str, spec: Mapping[str, Any], path: str) -> None:
        spec = dict(spec)
        action = spec.pop("action", "")
        original = self.view(execution_id)
        result = self.perform(action, original, original, {})
        if result.status == 404:
            raise CaseFailure(f"{action}: {result.request} answered 404: {result.body[:200]}", "API answered 404")
        if "error" in spec:
            error = spec.pop("error")
            if result.status < 400:
                raise Mismatch(f"{path}.error", f"expected {describe(error)}, the action answered {result.status}")
            check_error_body(error, result, f"{path}.error")
            _no_more(spec, path)
            return
        if result.status >= 400:
            raise Mismatch(path, f"{action} answered {result.status}: {result.body[:300]}")
        self.wait(result.execution_id or execution_id, Deadline(self.timeout))
        self.check_view(spec, self.view(result.execution_id or execution_id), path)

    # -- scenarios (steps) ------------------------------------------------------------------------------

    def _scenario(self, case: Case, flow: Any, notes: list[str]) -> None:
        state = _Scenario(case=case, flow=flow)
        for step in case.steps:
            try:
                self._step(step, state, notes)
            except Mismatch as exc:
                raise _prefixed(exc, step.label) from None
            except CaseFailure as exc:
                raise CaseFailure(f"{step.label}: {exc.reason}", exc.category) from None

    def _step(self, step: Step, state: "_Scenario", notes: list[str]) -> None:
        expect = dict(step.expect or {})
        deadline = Deadline(self.timeout)
        if step.run:
            target = parse_run_target(step.run)
            if target is None:
                raise CaseFailure(f"unsupported run step: {step.run}", "unsupported step")
            same_flow = (target.namespace, target.flow_id) == (state.flow.namespace, state.flow.id)
            execution_id = self._start_checked(target.namespace, target.flow_id,
                                               state.case.variants[0] if same_flow else None)
            until = (target.until,) if target.until else ()
            self.wait(execution_id, deadline, until=tuple(set(until) | set(TERMINATED)) if until else TERMINATED)
            state.current = execution_id
            if state.original is None:
                from flows_app.services import load_execution

                state.original = execution_id
                state.snapshot = load_execution(execution_id)
            view = self.view(execution_id)
            self.check_view(self._scenario_keys(expect, state, view, None), view, "")
            return
        if step.wait:
            time.sleep(_seconds(step.wait))
        call = self._parse_action(step.action) if is_call(step.action) else None
        if call is not None and call.name == "update":
            self._update_flow(call, expect, state)
            return
        if call is not None and "transform" in expect and state.snapshot is not None:
            self._transform(call, expect, state)
            return
        if step.action:
            original = self.view(state.original) if state.original else None
            current = self.view(state.current) if state.current else None
            result = self.perform(step.action, current, original, state.last_request)
            method, _, url = result.request.partition(" ")
            state.last_request.update({"method": method, "path": url, method: url})
            if result.status == 404 and expect.get("httpStatus") != 404:
                raise CaseFailure(f"{result.request} answered 404: {result.body[:200]}", "API answered 404")
            subject = None
            if result.execution_id and isinstance(result.json, Mapping) and "state" in result.json:
                subject = ExecutionView(result.json)
            rest = self._scenario_keys(expect, state, subject, result, original)
            if rest:
                if subject is None:
                    raise Mismatch("", f"no execution in the answer to {result.request} "
                                       f"({result.status}: {result.body[:200]}) to check {sorted(rest)}")
                check_execution(rest, subject, self.context(subject, original), "", original)
            if result.execution_id and subject is not None and result.execution_id != state.original:
                state.current = result.execution_id
            return
        rest = self._scenario_keys(expect, state, None, None)
        if rest:
            raise Mismatch("", f"unsupported expectations {sorted(rest)}")

    def _transform(self, call: Call, expect: dict[str, Any], state: "_Scenario") -> None:
        """``transform``: what Kestra's ExecutionService returns for an operation, nothing stored or run.

        The operation applies to the execution as the scenario's first run left it (Kestra's tests
        keep that object), through Celestra's pure operations.
        """
        from orchestrator.engine import operations
        from orchestrator.runtime.flows import get_flow

        snapshot = state.snapshot
        flow = get_flow(snapshot.namespace, snapshot.flow_id, snapshot.flow_revision)
        original = ExecutionView(snapshot.to_json())
        args = call.args
        try:
            if call.name == "restart":
                changed = operations.restart(flow, snapshot, revision=args["revision"])
            elif call.name == "replay":
                changed = operations.replay(flow, snapshot, resolve_task_run(original, args["taskRunId"]),
                                            revision=args["revision"])
            elif call.name == "markAs":
                changed = operations.mark_as(flow, snapshot, resolve_task_run(original, args["taskRunId"]),
                                             _required(call, "newState"))
            elif call.name == "resume" and args["newState"] == "RUNNING":
                changed = operations.resume(flow, snapshot, args["inputs"])
            elif call.name == "pause":
                changed = operations.pause(snapshot)
            elif call.name == "unqueue":
                changed = operations.unqueue(snapshot, args["state"])
            elif call.name == "changeStatus":
                changed = operations.change_status(snapshot, _required(call, "newState"))
            elif call.name == "forceRun":
                changed = operations.force_run(flow, snapshot)
            else:
                raise CaseFailure(f"no pure form of the operation {call.text!r} to transform with",
                                  "unsupported action")
        except CaseFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - the operation's refusal is the observed behaviour
            raise Mismatch("transform", f"{call.name} raised {type(exc).__name__}: {exc}") from None
        view = ExecutionView(changed.to_json())
        check_execution(expect.pop("transform"), view, self.context(view, original), "transform", original)
        _no_more(expect, "")

    def _update_flow(self, call: Call, expect: dict[str, Any], state: "_Scenario") -> None:
        """"Update the flow → revision N": save the flow again through the API (the step's ``source``,
        or the same source with a comment, which is a change for the revision count) until it has
        revision N; ``expect`` may check ``revision``."""
        flow = state.flow
        wanted = call.args["revision"]
        source = expect.pop("source", None) or self.source(state.case.file)
        for _ in range(10):
            current = self.http("GET", f"/flows/{flow.namespace}/{flow.id}")
            revision = (current.json or {}).get("revision") if isinstance(current.json, Mapping) else None
            if wanted is not None and revision is not None and revision >= wanted:
                break
            edited = source.rstrip("\n") + f"\n# revision {(revision or 0) + 1}\n"
            result = self.http("PUT", f"/flows/{flow.namespace}/{flow.id}", raw=edited,
                               content_type="application/x-yaml")
            if result.status >= 400:
                raise CaseFailure(f"updating the flow answered {result.status}: {result.body[:200]}", "API error")
            if wanted is None:
                revision = (result.json or {}).get("revision") if isinstance(result.json, Mapping) else None
                break
        else:
            raise CaseFailure(f"the flow did not reach revision {wanted}", "flow revisions")
        if "revision" in expect:
            check(expect.pop("revision"), revision if wanted is None else wanted, "revision")
        _no_more(expect, "")

    def _scenario_keys(self, expect: dict[str, Any], state: "_Scenario", subject: ExecutionView | None,
                       result: HttpResult | None, original: ExecutionView | None = None) -> dict[str, Any]:
        """Handle the scenario-level keys of a step's ``expect``; return the execution-level rest."""
        original = original or (self.view(state.original) if state.original else None)
        if result is not None:
            self.check_http(expect, result, "", keep=True)
            for key in ("httpStatus", "bodyContains", "body", "messageContains", "httpError"):
                expect.pop(key, None)
            if "executionCreated" in expect or "created" in expect:
                key = "executionCreated" if "executionCreated" in expect else "created"
                check(expect.pop(key), result.status == 200 and bool(result.execution_id), key)
            if "total" in expect:
                total = result.json.get("total") if isinstance(result.json, Mapping) else None
                check(expect.pop("total"), total, "total")
            if ("trigger" in expect or "labelsInOrder" in expect) and result.execution_id:
                view = self.view(result.execution_id)
                part = {k: expect.pop(k) for k in ("trigger", "labelsInOrder") if k in expect}
                extra = {"the same string, unparsed": result.sent} if result.sent is not None else None
                check_execution(part, view, self.context(view, extra=extra), "")
        for key in ("restarted", "replayed", "response"):
            if key in expect:
                if subject is None:
                    raise Mismatch(key, f"no execution in the answer ({result.status if result else '-'}: "
                                        f"{result.body[:200] if result else ''})")
                check_execution(expect.pop(key), subject, self.context(subject, original), key, original)
        for key in ("final", "finalChild", "afterwards"):
            if key in expect:
                target = (result.execution_id if result and result.execution_id else None) or state.current
                if not target:
                    raise Mismatch(key, "no execution to wait for")
                spec = dict(expect.pop(key) or {})
                self.wait(target, Deadline(self.timeout))
                view = self.view(target)
                check_execution(spec, view, self.context(view, original), key, original)
        if "executionStatesSeen" in expect:
            target = state.current
            self.wait(target, Deadline(self.timeout))
            check({"hasItems": expect.pop("executionStatesSeen")}, self.view(target).state_history,
                  "executionStatesSeen")
        if "listenerExecutions" in expect:
            count = len(self.flow_executions(state.flow.namespace, state.flow.id))
            check(expect.pop("listenerExecutions"), count, "listenerExecutions")
        for key, window, wanted in (("listenerTerminatedWithin10s", 10.0, TERMINATED),
                                    ("listenerSuccessWithin1s", 1.0, ("SUCCESS",))):
            if key in expect:
                flag = expect.pop(key)
                listener = self._wait_listener(state, window, wanted)
                check(flag, listener is not None, key)
        if "listener" in expect:
            listener = self._wait_listener(state, self.timeout, TERMINATED)
            if listener is None:
                raise Mismatch("listener", f"no execution of {state.flow.namespace}/{state.flow.id}")
            view = self.view(listener)
            check_execution(expect.pop("listener"), view, self.context(view), "listener")
        return expect

    def _wait_listener(self, state: "_Scenario", window: float, wanted: tuple[str, ...]) -> str | None:
        from flows_app import models

        deadline = Deadline(window)
        while True:
            row = (models.Execution.objects.filter(namespace=state.flow.namespace, flow_id=state.flow.id,
                                                   state__in=wanted).order_by("created").first())
            if row is not None:
                return row.id
            if deadline.expired():
                return None
            time.sleep(0.05)

    # -- actions -----------------------------------------------------------------------------------------

    def perform(self, action: str, current: ExecutionView | None, original: ExecutionView | None,
                last: Mapping[str, str]) -> HttpResult:
        """Run an action described in the manifest: an operation call goes through the REST API,
        anything else is an HTTP request description."""
        text = action.strip()
        if is_call(text):
            return self.perform_call(self._parse_action(text), current, original)
        return self.http_action(text, current, last)

    @staticmethod
    def _parse_action(text: str | None) -> Call | None:
        if text is None:
            return None
        try:
            return parse_call(text)
        except GrammarError as exc:
            raise CaseFailure(f"unknown action form: {exc}", "unknown form") from None

    def perform_call(self, call: Call, current: ExecutionView | None, original: ExecutionView | None) -> HttpResult:
        """One ExecutionService operation through its REST endpoint, with Kestra's parameter names."""
        args = call.args
        which = args.get("execution")
        subject = original if isinstance(which, ExecutionRef) and which.which == "original" and original else current
        if call.name == "replay":  # Kestra's tests replay the execution their first run returned
            subject = original or current
        if subject is None:
            raise CaseFailure(f"no execution to apply {call.text!r} to", "manifest")
        base = f"/executions/{subject.id}"
        query = {}
        if call.name == "restart":
            query = {"revision": args["revision"]}
            return self.http("POST", _with_query(base + "/restart", query))
        if call.name == "replay":
            query = {"taskRunId": resolve_task_run(subject, args["taskRunId"]), "revision": args["revision"]}
            return self.http("POST", _with_query(base + "/replay", query))
        if call.name == "markAs":
            return self.http("POST", base + "/state", json_body={
                "taskRunId": resolve_task_run(subject, args["taskRunId"]), "state": _required(call, "newState")})
        if call.name == "resume":
            if args["newState"] == "KILLING":  # resuming to KILLING kills the paused execution
                return self.http("DELETE", base + "/kill")
            if args["newState"] != "RUNNING":
                raise CaseFailure(f"resume to {args['newState']} has no REST form: {call.text!r}", "unsupported action")
            parts: dict[str, Any] = {}
            if isinstance(args["inputs"], Mapping):
                parts.update({str(k): str(v) for k, v in args["inputs"].items()})
            if "form inputs:" in call.rest:
                for key, value in re.findall(r"(\w+)=('(?:[^']*)'|<[^<>]*>)", call.rest):
                    if value.startswith("<"):
                        content = subject.id.encode() if "execution id" in value else b"content"
                        parts[key] = _upload(f"{key}.txt", content)
                    else:
                        parts[key] = value.strip("'")
            return self.http("POST", base + "/resume", multipart=parts)
        if call.name == "kill":
            return self.http("DELETE", base + "/kill")
        if call.name == "pause":
            return self.http("POST", base + "/pause")
        if call.name == "delete":
            query = {name: args[name] for name in ("deleteLogs", "deleteMetrics", "deleteStorage")}
            return self.http("DELETE", _with_query(base, query))
        if call.name == "unqueue":
            return self.http("POST", _with_query(base + "/unqueue", {"state": args["state"]}))
        if call.name == "forceRun":
            return self.http("POST", base + "/force-run")
        if call.name == "changeStatus":
            return self.http("POST", _with_query(base + "/change-status", {"status": _required(call, "newState")}))
        raise CaseFailure(f"the operation {call.name!r} has no REST form here: {call.text!r}", "unsupported action")

    def http_action(self, text: str, current: ExecutionView | None, last: Mapping[str, str]) -> HttpResult:
        """``POST /api/v1/executions/{id}/resume multipart: asked=myString, file part 'data'`` and the like."""
        method_match = re.match(r"^(GET|POST|PUT|DELETE|PATCH)\b", text)
        method = method_match.group(1) if method_match else None
        path_match = _URL.search(text)
        if text.startswith("any method on"):
            method = "GET"
        elif text.startswith("same with"):
            method = last.get("method") or "POST"
        if method is None:
            raise CaseFailure(f"unsupported action: {text}", "unsupported action")
        if path_match:
            path = path_match.group(1)
        elif "same search" in text and last.get("GET"):
            path = last["GET"]
        elif last.get("path"):  # "PUT same URL", "POST with raw text body ...": the previous URL
            path = last["path"]
            if "(no query)" in text:
                path = path.split("?", 1)[0]
        else:
            raise CaseFailure(f"unsupported action (no URL): {text}", "unsupported action")
        path = self._substitute(path, current)
        tail = text[path_match.end():] if path_match else text
        literal = re.search(r"with body string (.+?) \(", tail)
        if literal:  # a text that is not valid JSON, sent as JSON (the client's default for a string body)
            result = self.http(method, path, raw=literal.group(1), content_type="application/json")
            result.sent = literal.group(1)
            return result
        body = _request_body(tail)
        return self.http(method, path, **body)

    def _substitute(self, path: str, current: ExecutionView | None) -> str:
        if "{id of a terminated minimal execution}" in path:
            minimal = self.deploy("valids/minimal.yaml")
            execution_id = self._start_checked(minimal.namespace, minimal.id, None)
            self.wait(execution_id, Deadline(self.timeout), what="minimal execution")
            path = path.replace("{id of a terminated minimal execution}", execution_id)
        if "{id}" in path:
            if current is None:
                raise CaseFailure("no current execution for {id}", "manifest")
            path = path.replace("{id}", current.id or "")
        for match in re.finditer(r"<id of (?:task run )?'?([\w\-]+)'?>", path):
            if current is None or current.first_run(match.group(1)) is None:
                raise CaseFailure(f"no task run '{match.group(1)}' to replace {match.group(0)}", "manifest")
            path = path.replace(match.group(0), current.first_run(match.group(1))["id"])
        return path

    # -- HTTP -----------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from django.test import Client

            self._client = Client(raise_request_exception=False)
        return self._client

    def http(self, method: str, path: str, *, multipart: Mapping[str, Any] | None = None, json_body: Any = None,
             raw: str | bytes | None = None, content_type: str | None = None) -> HttpResult:
        """One request through Django's test client; ``/api/v1/...`` paths are served under ``/api/v1/main``."""
        url = _api_path(path)
        call = getattr(self.client, method.lower())
        if multipart is not None and method not in ("GET", "DELETE"):
            from django.test.client import MULTIPART_CONTENT

            response = call(url, data=dict(multipart), content_type=MULTIPART_CONTENT)
        elif json_body is not None:
            response = call(url, data=json.dumps(json_body), content_type="application/json")
        elif raw is not None:
            response = call(url, data=raw, content_type=content_type or "text/plain")
        else:
            response = call(url)
        body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
        text = body.decode("utf-8", errors="replace")
        parsed = None
        if text and "json" in (response.get("Content-Type") or ""):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return HttpResult(response.status_code, text, parsed, f"{method} {url}")

    def check_http(self, expect: dict[str, Any], result: HttpResult, path: str, keep: bool = False) -> None:
        """``httpStatus``, ``bodyContains``, ``body``, ``messageContains``, ``httpError``, ``resultCount``..."""
        pop = expect.get if keep else expect.pop
        where = (lambda key: f"{path}.{key}" if path else key)
        if "httpStatus" in expect:
            check(pop("httpStatus"), result.status, where("httpStatus") + f" ({result.request}: {result.body[:200]})")
        if "bodyContains" in expect:
            for needle in _as_list(pop("bodyContains")):
                if needle not in result.body:
                    raise Mismatch(where("bodyContains"), f"{describe(needle)} not in the answer "
                                                          f"({result.status}) {describe(result.body, 300)}")
        if "messageContains" in expect:
            message = result.json.get("message") if isinstance(result.json, Mapping) else result.body
            for needle in _as_list(pop("messageContains")):
                if needle not in str(message):
                    raise Mismatch(where("messageContains"), f"{describe(needle)} not in {describe(message, 300)}")
        if "body" in expect:
            wanted = pop("body")
            check(wanted, result.json if result.json is not None else (result.body or None), where("body"))
        if "httpError" in expect:
            spec = dict(pop("httpError") or {})
            if result.status < 400:
                raise Mismatch(where("httpError"), f"expected an error, got {result.status} {result.body[:200]}")
            self.check_http(spec, result, where("httpError"))
        if not keep:
            if "resultCount" in expect or "results" in expect:
                results = result.json if isinstance(result.json, list) else None
                if results is None:
                    raise Mismatch(where("results"), f"expected a list, got ({result.status}) {result.body[:300]}")
                if "resultCount" in expect:
                    check(expect.pop("resultCount"), len(results), where("resultCount"))
                for index, spec in enumerate(expect.pop("results", None) or []):
                    check_validation_result(spec, results[index] if index < len(results) else None,
                                            where(f"results[{index}]"))
            for key in ("deprecationPaths", "infos", "warnings"):
                if key in expect:
                    first = result.json[0] if isinstance(result.json, list) and result.json else {}
                    check(expect.pop(key), first.get(key), where(key))
            _no_more(expect, path)

    # -- api -------------------------------------------------------------------------------------------------

    def _api(self, case: Case, notes: list[str]) -> None:
        if case.setup:
            raise CaseFailure(f"unsupported setup: {case.setup}", "unsupported setup")
        if case.run and "/flows/validate" in case.run:
            expect = dict(case.expect or {})
            source = self.source(case.file)
            if re.match(r"^create (?:the )?first document as an existing flow\b", case.run):
                from flows_app.services_admin import split_documents

                created = self.http("POST", "/flows", raw=split_documents(source)[0],
                                    content_type="application/x-yaml")
                if created.status >= 400:
                    raise CaseFailure(f"creating the first document answered {created.status}: "
                                      f"{created.body[:200]}", "API error")
            elif not case.run.startswith("POST /api/v1/flows/validate"):
                raise CaseFailure(f"unsupported run: {case.run}", "unsupported step")
            result = self.http("POST", "/flows/validate", raw=source, content_type="application/x-yaml")
            self.check_http(expect, result, "")
            return
        flow = self.prepare(case, notes)
        if case.steps:
            return self._scenario(case, flow, notes)
        run = case.run or ""
        variant = case.variants[0]
        inputs, files = variant.inputs, variant.input_files
        same = re.search(r"same multipart body as ([\w.\-]+)", run)
        reference_run = ""
        if same:
            other = self.manifest.get(same.group(1))
            inputs, files, reference_run = other.inputs, other.input_files, other.run or ""
        plus = re.search(r"with (\w+)=(\S+) plus ([\w.]+)", run)
        if plus:
            inputs = dict((self.manifest.shared_inputs.get(plus.group(3)) or {}).get("values") or {})
            inputs[plus.group(1)] = plus.group(2)
            files = {}
        method_path = re.match(r"^(POST|GET|PUT)\s+" + _URL.pattern, run)
        if method_path:
            path = method_path.group(2)
            if "?..." in path:
                query = urlsplit(re.match(r"^\S+\s+(\S+)", reference_run).group(1)).query if reference_run else ""
                path = path.replace("?...", "?" + query if query else "?").replace("?&", "?")
        else:
            path = f"/api/v1/executions/{flow.namespace}/{flow.id}"
        parts = self._multipart(inputs, files, plain_files="plain string part" in run)
        result = self.http("POST", path, multipart=parts)
        expect = dict(case.expect or {})
        if "unknownFlow" in expect:
            spec = expect.pop("unknownFlow")
            m = re.match(r"^(\w+)\s+(\S+)\s*->\s*(\d+)", spec)
            if not m:
                raise CaseFailure(f"cannot read {spec}", "manifest")
            other = self.http(m.group(1), m.group(2), multipart={})
            check(int(m.group(3)), other.status, f"unknownFlow ({other.request})")
        if "httpError" in expect:
            self.check_http(expect, result, "")
            return
        if result.status != 200:
            raise Mismatch("", f"{result.request} answered {result.status}: {result.body[:300]}")
        view = ExecutionView(result.json)
        if "response" in expect:
            check_execution(expect.pop("response"), view, self.context(view), "response")
        if "wait=true" not in path and expect:
            self.wait(view.id, Deadline(self.timeout))
            view = self.view(view.id)
        check_execution(_only_execution_keys(expect, ""), view, self.context(view), "")

    def _multipart(self, inputs: Mapping[str, Any] | None, files: Mapping[str, str],
                   plain_files: bool = False) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        for key, value in (inputs or {}).items():
            if key in files:
                continue
            if is_description(value):
                local = re.search(r"(fixtures/[\w.\-]+)", value)
                if local:
                    parts[key] = (str(self.path(local.group(1))) if plain_files
                                  else _upload(Path(local.group(1)).name, self.path(local.group(1)).read_bytes()))
                continue
            parts[key] = value if isinstance(value, str) else json.dumps(value)
        for key, relative in files.items():
            parts[key] = _upload(Path(relative).name, self.path(relative).read_bytes())
        return parts

    # -- cli ---------------------------------------------------------------------------------------------------

    def _cli(self, case: Case, notes: list[str]) -> None:
        from django.core.management import call_command
        from django.core.management.base import CommandError

        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            call_command("flow", "validate", str(self.path(case.file)), stdout=out, stderr=err)
        except CommandError as exc:
            code = getattr(exc, "returncode", 1) or 1
            err.write(str(exc))
        except SystemExit as exc:
            code = int(exc.code or 0)
        expect = dict(case.expect or {})
        if "exitCode" in expect:
            check(expect.pop("exitCode"), code, f"exitCode (stderr: {err.getvalue()[:200]})")
        stdout = out.getvalue()
        for needle in _as_list(expect.pop("stdoutContains", [])):
            if needle not in stdout:
                raise Mismatch("stdoutContains", f"{describe(needle)} not in the output {describe(stdout, 300)}")
        _no_more(expect, "")

    # -- no-assertion --------------------------------------------------------------------------------------------

    def _no_assertion(self, case: Case, notes: list[str]) -> None:
        flow = self.prepare(case, notes)
        given = set(case.inputs or {})
        blocking = [d.get("id") or d.get("name") for d in flow.inputs or []
                    if d.get("required", True) and d.get("defaults") is None
                    and (d.get("id") or d.get("name")) not in given]
        if blocking:
            notes.append(f"deployed; not run (required inputs without defaults: {', '.join(map(str, blocking))})")
            return
        execution_id = self._start_checked(flow.namespace, flow.id, case.variants[0])
        self.wait(execution_id, Deadline(self.timeout))


# ---------------------------------------------------------------------------------------------------------
# Helpers (module level so that they can be tested without a runner)
# ---------------------------------------------------------------------------------------------------------

@dataclass
class _Scenario:
    case: Case
    flow: Any
    current: str | None = None
    original: str | None = None
    #: the engine execution as the first run left it (what "original execution" designates)
    snapshot: Any = None
    last_request: dict[str, str] = field(default_factory=dict)


class _CreationFailed(Exception):
    def __init__(self, error: Exception):
        self.error = error
        super().__init__(str(error))


_URL = re.compile(r"(/api/v1/(?:[^\s<{]|<[^<>]*>|\{[^{}]*\})+)")


def _required(call: Call, name: str) -> Any:
    if call.args.get(name) is None:
        raise CaseFailure(f"{call.name}: argument {name} is missing in {call.text!r}", "manifest")
    return call.args[name]


def _with_query(path: str, query: Mapping[str, Any]) -> str:
    """``path?k=v`` for the parameters that are set (booleans as Kestra writes them)."""
    from urllib.parse import urlencode

    pairs = {k: ("true" if v is True else "false" if v is False else v) for k, v in query.items() if v is not None}
    return f"{path}?{urlencode(pairs)}" if pairs else path


def _only_missing_required(exc: Exception) -> bool:
    errors = getattr(exc, "errors", None)
    return (type(exc).__name__ == "InputValidationError" and bool(errors)
            and all("missing required input" in str(message) for _, message in errors))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}: {key}" if prefix else key


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _mentioned(key: str, inputs: Mapping[str, Any]) -> bool:
    return any(isinstance(v, str) and key in v for v in inputs.values())


def _no_more(expect: Mapping[str, Any], prefix: str) -> None:
    """Every expectation must have been consumed: a leftover key is reported, never ignored."""
    if expect:
        key = next(iter(expect))
        raise Mismatch(_join(prefix, key), "unsupported expectation")


def _only_execution_keys(expect: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The execution-level part of ``expect``; a runner-level key left here was not handled."""
    for key in expect:
        if key in PHASE_KEYS or key in OTHER_EXECUTION_KEYS:
            raise Mismatch(_join(prefix, key), "unsupported expectation in this run mode")
        if key not in EXECUTION_KEYS and not key.startswith("taskRunsInState"):
            raise Mismatch(_join(prefix, key), "unsupported expectation")
    return dict(expect)


def _api_path(path: str) -> str:
    if path.startswith(API + "/") or path == API:
        return path
    if path.startswith("/api/v1/"):
        return API + path[len("/api/v1"):]
    return API + (path if path.startswith("/") else "/" + path)


def _upload(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def _request_body(tail: str) -> dict[str, Any]:
    """Request body described after the URL: JSON body, raw text, multipart parts, or nothing."""
    tail = tail.strip()
    json_match = re.search(r"(?:with )?(?:JSON )?body (?!string)(\{.*\}|\[.*\])\s*$", tail)
    if json_match and "raw text" not in tail:
        try:
            return {"json_body": yaml.safe_load(json_match.group(1))}
        except yaml.YAMLError:
            raise CaseFailure(f"cannot read the body {json_match.group(1)}", "manifest") from None
    raw_match = re.search(r"raw text body '([^']*)'", tail)
    if raw_match:
        return {"raw": raw_match.group(1), "content_type": "text/plain"}
    if "multipart" in tail:
        parts: dict[str, Any] = {}
        for key, value in re.findall(r"(\w+)=([^,\s()]+)", tail):
            parts[key] = value
        for name in re.findall(r"file part '(\w+)'", tail):
            parts[name] = _upload(f"{name}.txt", b"hello")
        return {"multipart": parts}
    return {}


def resolve_task_run(view: ExecutionView | None, ref: Any) -> str | None:
    """The id of the task run a grammar reference designates (``None`` stays ``None``: no task run)."""
    if ref is None or isinstance(ref, str):
        return ref
    if not isinstance(ref, TaskRunRef):
        raise CaseFailure(f"not a task-run reference: {ref!r}", "manifest")
    if view is None:
        raise CaseFailure(f"no execution to find the task run of '{ref.task_id}' in", "manifest")
    if ref.values is None:
        run = view.first_run(ref.task_id)
        if run is None:
            raise CaseFailure(f"no task run of '{ref.task_id}' in the execution", "manifest")
        return run["id"]
    for run in view.runs_of(ref.task_id):
        if view.parent_values(run) == list(ref.values):
            return run["id"]
    raise CaseFailure(f"no task run of '{ref.task_id}' with values {list(ref.values)}", "manifest")


def _kv_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    if isinstance(value, (dict, list)):
        return "JSON"
    return "STRING"


def _read_storage(uri: str) -> bytes:
    from storage_app.storage import get

    return get(uri)


def _renderer(flow: Any, execution_id: str) -> tuple[Any, dict[str, Any]]:
    """The expression renderer and the context ``create_execution`` gives to input defaults."""
    try:
        from orchestrator.engine import expressions
        from orchestrator.runtime.environment import static_extras
    except ImportError:
        return None, {}
    context = {**static_extras(), "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
               "execution": {"id": execution_id}, "labels": {}, "trigger": {}}
    return expressions.render, context


# ---------------------------------------------------------------------------------------------------------
# Checks shared by several kinds
# ---------------------------------------------------------------------------------------------------------

def _error_messages(exc: Exception) -> list[str]:
    errors = getattr(exc, "errors", None)
    out: list[str] = []
    for error in errors or []:
        if isinstance(error, tuple) and len(error) == 2:  # InputValidationError: (input id, message)
            out.append(str(error[1]))
        else:
            out.append(str(getattr(error, "message", error)))
    return out


def _error_labels(exc: Exception) -> list[str]:
    """Each error as ``label: message`` (FlowError.__str__) for substring checks."""
    errors = getattr(exc, "errors", None)
    out: list[str] = []
    for error in errors or []:
        if isinstance(error, tuple) and len(error) == 2:
            out.append(f"{error[0]}: {error[1]}")
        else:
            out.append(str(error))
    return out


def check_violations(expect: dict[str, Any], exc: Exception) -> None:
    """``messageContains``, ``messageEquals``, ``violationCount``... against a rejection."""
    text = str(exc)
    messages = _error_messages(exc)
    labelled = _error_labels(exc)
    count = len(getattr(exc, "errors", None) or [1])
    for key, expected in expect.items():
        if key == "violationCount" or key == "violationCountIfParseFails":
            if count != expected:
                raise Mismatch(key, f"expected {expected} violations, got {count}: {describe(labelled, 400)}")
        elif key == "messageContains":
            # also as Kestra's ConstraintViolationException prints them: "path: message" per
            # violation, where a flow-level violation has an empty path (": Invalid Flow: …")
            kestra_text = "\n".join(f"{getattr(e, 'path', '') or ''}: {getattr(e, 'message', e)}"
                                     for e in getattr(exc, "errors", None) or [] if not isinstance(e, tuple))
            for needle in _as_list(expected):
                if needle not in text and needle not in kestra_text:
                    raise Mismatch(key, f"{describe(needle)} not in {describe(text, 400)}")
        elif key == "messageEquals":
            for wanted in _as_list(expected):
                if wanted not in messages and wanted not in labelled and wanted != text:
                    raise Mismatch(key, f"no violation equal to {describe(wanted)}; got {describe(labelled, 400)}")
        elif key == "someMessageContains":
            for needle in _as_list(expected):
                if not any(needle in m for m in labelled):
                    raise Mismatch(key, f"no violation contains {describe(needle)}; got {describe(labelled, 400)}")
        elif key == "eachMessageOneOf":
            options = []
            for option in expected:
                m = re.match(r"^==\s*'(.*)'$", option) or re.match(r"^equals:\s*(.*)$", option)
                if m:
                    options.append(("equals", m.group(1)))
                else:
                    m = re.match(r"^contains:\s*(.*)$", option)
                    options.append(("contains", m.group(1) if m else option))
            for message, label in zip(messages, labelled):
                if not any((kind == "equals" and want in (message, label)) or (kind == "contains" and want in label)
                           for kind, want in options):
                    raise Mismatch(key, f"violation {describe(label)} is none of {describe(expected)}")
        elif key == "violationsContaining":
            for needle, wanted in (expected or {}).items():
                found = sum(1 for m in labelled if needle in m)
                if found != wanted:
                    raise Mismatch(f"{key}.{needle}", f"expected {wanted} violations containing it, got {found}: "
                                                      f"{describe(labelled, 400)}")
        elif key == "messages":
            pool = list(zip(messages, labelled))
            for number, spec in enumerate(expected or []):
                for index, (message, label) in enumerate(pool):
                    if ("equals" in spec and spec["equals"] in (message, label)) or \
                       ("contains" in spec and spec["contains"] in label):
                        pool.pop(index)
                        break
                else:
                    raise Mismatch(f"{key}[{number}]", f"no violation matches {describe(spec)}; got "
                                                       f"{describe(labelled, 400)}")
        elif key == "propertyPath":
            wanted = java_property_path(expected)
            paths = [getattr(error, "path", None) for error in getattr(exc, "errors", None) or []]
            if wanted not in paths:
                raise Mismatch(key, f"expected a violation at {describe(wanted)} ({expected}), got paths "
                                    f"{describe(paths)}")
        else:
            raise Mismatch(key, "unsupported expectation")


def java_property_path(text: str) -> str:
    """``io.kestra...Flow["tasks"]->java.util.ArrayList[0]->...Return["invalid"]`` → ``tasks[0].invalid``."""
    out = ""
    for name, index in re.findall(r'\["([^"]+)"\]|\[(\d+)\]', text):
        out = f"{out}[{index}]" if index else (f"{out}.{name}" if out else name)
    return out


def check_input_error(spec: Any, exc: Exception, path: str) -> None:
    """``error: {type: ConstraintViolationException, contains: ..., equals: ...}`` against an exception."""
    spec = dict(spec or {})
    name = type(exc).__name__
    wanted_type = spec.pop("type", None)
    if wanted_type is not None:
        equivalent = {"ConstraintViolationException": ("InputValidationError", "FlowValidationError")}
        if name != wanted_type and name not in equivalent.get(wanted_type, ()):
            raise Mismatch(f"{path}.type", f"expected {wanted_type}, got {name}: {exc}")
    text = str(exc)
    if "contains" in spec:
        needle = spec.pop("contains")
        if needle not in text:
            raise Mismatch(f"{path}.contains", f"{describe(needle)} not in {describe(text, 400)}")
    if "equals" in spec:
        wanted = spec.pop("equals")
        if wanted != text and wanted not in _error_messages(exc) and wanted not in _error_labels(exc):
            raise Mismatch(f"{path}.equals", f"expected {describe(wanted)}, got {describe(text, 400)}")
    _no_more(spec, path)


def check_error_body(spec: Any, result: HttpResult, path: str) -> None:
    """An API error answer against ``error: {type, contains}`` (422 for constraint violations)."""
    spec = dict(spec or {})
    wanted_type = spec.pop("type", None)
    if wanted_type == "ConstraintViolationException" and result.status != 422:
        raise Mismatch(f"{path}.type", f"expected a constraint violation (422), got {result.status}: "
                                       f"{result.body[:200]}")
    if "contains" in spec:
        needle = spec.pop("contains")
        if needle not in result.body:
            raise Mismatch(f"{path}.contains", f"{describe(needle)} not in ({result.status}) "
                                               f"{describe(result.body, 300)}")
    _no_more(spec, path)


def check_validation_result(spec: Mapping[str, Any], result: Any, path: str) -> None:
    """One entry of ``POST /flows/validate``: ``constraintsContains``, ``outdated``, deprecation paths..."""
    if not isinstance(result, Mapping):
        raise Mismatch(path, f"no validation result, got {describe(result)}")
    for key, expected in spec.items():
        where = f"{path}.{key}"
        if key == "constraintsContains":
            constraints = result.get("constraints")
            if not isinstance(constraints, str) or expected not in constraints:
                raise Mismatch(where, f"{describe(expected)} not in {describe(constraints, 300)}")
        elif key == "deprecationPathsExactly":
            check({"containsInAnyOrder": list(expected or [])}, result.get("deprecationPaths") or [], where)
        elif key in ("warnings", "infos") and isinstance(expected, int):
            check(expected, len(result.get(key) or []), where)
        else:
            check(expected, result.get(key), where)


def _plain(value: Any) -> Any:
    """Model objects (dataclasses, pydantic models) as plain data."""
    import dataclasses

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(by_alias=True, exclude_none=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_") and f.name not in ("plugin", "path", "line")}
    return value


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


def task_data(task: Any) -> dict[str, Any]:
    """A parsed task as a Kestra-like map: common properties in camelCase plus the plugin's properties."""
    data = _plain(task)
    if not isinstance(data, dict):
        return {"value": data}
    out = {_camel(k): v for k, v in data.items() if k != "props"}
    for key, value in (data.get("props") or {}).items():
        out.setdefault(key, value)
    return out


def check_parsed_flow(expect: Mapping[str, Any], flow: Any, source: str) -> None:
    """``parseOnly`` expectations on the flow model."""
    inputs = list(getattr(flow, "inputs", None) or [])
    for key, expected in expect.items():
        match = re.match(r"^task\[(\d+)\]$", key)
        if match:
            index = int(match.group(1))
            tasks = list(flow.tasks or [])
            if index >= len(tasks):
                raise Mismatch(key, f"the flow has {len(tasks)} tasks")
            check(expected, task_data(tasks[index]), key)
        elif key == "taskCount":
            check(expected, len(flow.tasks or []), key)
        elif key == "inputCount":
            check(expected, len(inputs), key)
        elif key == "requiredCount":
            check(expected, sum(1 for d in inputs if d.get("required", True) is not False), key)
        elif key == "optionalCount":
            check(expected, sum(1 for d in inputs if d.get("required", True) is False), key)
        elif key == "withDefaultsCount":
            check(expected, sum(1 for d in inputs if d.get("defaults") is not None), key)
        elif key == "stringInputsWithValidator":
            check(expected, sum(1 for d in inputs if d.get("type") == "STRING" and d.get("validator")), key)
        elif key == "inputs":
            check(expected, [_plain(d) for d in inputs], key)
        elif key == "valid":
            check(expected, True, key)
        elif key == "allTasksWithChildsAndTriggerIdsCount":
            count = len(flow.all_tasks()) + len(getattr(flow, "triggers", None) or [])
            check(expected, count, key)
        elif key == "jsonSerialization":
            try:
                from flows_app.api.serializers import flow_json
            except ImportError as exc:
                raise Mismatch(key, f"unsupported: no flow serializer ({exc})") from None
            actual = flow_json(source, revision=flow.revision or 1, namespace=flow.namespace, flow_id=flow.id,
                               with_source=False, parsed=flow)
            actual.pop("tenantId", None)  # OSS tenant is fixed to "main" by design
            wanted = json.loads(expected)
            if actual != wanted:
                raise Mismatch(key, f"expected {describe(wanted, 400)}, got {describe(actual, 400)}")
        else:
            raise Mismatch(key, "unsupported expectation")
