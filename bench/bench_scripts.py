"""Overhead of a trivial script task over the bare process start.

Compares, on this machine, the median time of

* ``subprocess.run(["sh", "-c", "echo hi"])``: the floor, a process started and its output read
  (and the same with ``/bin/sh`` and a two-entry PATH, which skips the caller's PATH search);
* one attempt of ``io.kestra.plugin.scripts.shell.Commands`` with ``commands: [echo hi]``, as a
  worker runs it (``run_attempt``): working directory created and removed, commands rendered,
  ``set -e`` added, the process started in its own process group and supervised, both streams
  read as log lines, the outputs built;

and prints both and their difference (the overhead; aim: under 20 ms). Dependency installs are
not part of it. Run with ``.venv/bin/python bench/bench_scripts.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.engine import expressions
from orchestrator.engine.attempt import run_attempt
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.memory_platform import MemoryPlatform

FLOW = """
id: bench
namespace: company.bench
tasks:
  - id: hi
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo hi
"""


class BenchContext:
    """The run context of one attempt (what a worker gives a task), on an in-memory platform."""

    def __init__(self) -> None:
        self.platform = MemoryPlatform("company.bench", "bench", "exec", "hi", "run")
        self.task_id, self.execution_id, self.namespace, self.flow_id = "hi", "exec", "company.bench", "bench"
        self.variables: dict[str, Any] = {"flow": {"id": "bench", "namespace": "company.bench"}}
        self.logs: list[tuple[str, str]] = []
        self.metrics: list[Any] = []

    def render(self, value: Any) -> Any:
        return expressions.render(value, self.variables)

    def render_string(self, value: Any) -> str:
        return expressions.render_string(value, self.variables)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.metrics.append((kind, name, value))

    def set_timeout(self, seconds: float) -> None:  # pragma: no cover - no timeout here
        pass

    def timed_out(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False


def median_ms(action: Callable[[], Any], runs: int) -> float:
    for _ in range(5):  # warm-up: imports, page cache
        action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def bare() -> None:
    subprocess.run(["sh", "-c", "echo hi"], capture_output=True, check=True)


def bare_strict() -> None:
    # the same start without the PATH search for "sh" through the caller's PATH, which costs
    # milliseconds on a machine with many PATH entries: the strictest floor
    subprocess.run(["/bin/sh", "-c", "echo hi"], capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    task = parse_flow(FLOW).tasks[0]

    def script() -> None:
        ctx = BenchContext()
        state, outputs = run_attempt(task, ctx)
        if state != "SUCCESS" or ctx.logs != [("INFO", "hi")]:
            raise SystemExit(f"the script task did not run as expected: {state} {ctx.logs}")

    floor = median_ms(bare, args.runs)
    strict = median_ms(bare_strict, args.runs)
    celestra = median_ms(script, args.runs)
    print(f"bare subprocess.run(['sh', '-c', 'echo hi'])              {floor:7.2f} ms (median of {args.runs})")
    print(f"bare subprocess.run(['/bin/sh', '-c', 'echo hi'], env=…)  {strict:7.2f} ms")
    print(f"shell.Commands [echo hi], one attempt                     {celestra:7.2f} ms")
    print(f"overhead over the bare start                              {celestra - floor:7.2f} ms")
    print(f"overhead over the strict floor                            {celestra - strict:7.2f} ms")


if __name__ == "__main__":
    main()
