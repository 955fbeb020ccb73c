"""The benchmark's flows (bench/flows) parse, and the small ones run to SUCCESS in memory."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine import memory, states
from orchestrator.engine.flow import parse_flow

FLOWS = Path(__file__).resolve().parents[2] / "bench" / "flows"


def source(name: str) -> str:
    return (FLOWS / f"{name}.yaml").read_text()


def test_every_bench_flow_parses():
    names = sorted(p.stem for p in FLOWS.glob("*.yaml"))
    assert names == ["fan100", "foreach10k", "kestra-b2", "seq40", "two"]
    for name in names:
        flow = parse_flow(source(name))
        assert (flow.namespace, flow.id) == ("bench", name)


def test_seq40_chains_forty_outputs():
    run = memory.run(source("seq40"))
    assert run.state == states.SUCCESS
    assert len(run.execution.task_runs) == 40
    assert run.run("t40").outputs == {"value": "x" * 40}


def test_fan100_runs_every_value_then_reads_all_outputs():
    run = memory.run(source("fan100"))
    assert run.state == states.SUCCESS
    assert len(run.runs("r")) == 100
    assert {r.value for r in run.runs("r")} == {str(i) for i in range(1, 101)}
    assert run.run("collect").outputs == {"value": "100"}


@pytest.mark.parametrize("name, task_runs, jobs", [("kestra-b2", 10, 5), ("two", 2, 2)])
def test_rate_flows(name, task_runs, jobs):
    run = memory.run(source(name))
    assert run.state == states.SUCCESS
    assert len(run.execution.task_runs) == task_runs
    assert len(run.jobs) == jobs


def test_foreach10k_parses_with_one_value_at_a_time():
    flow = parse_flow(source("foreach10k"))
    each = flow.find_task("each")
    assert each.props["concurrencyLimit"] == 1
    assert [i for i in flow.inputs if i["id"] == "count"][0]["defaults"] == 10000


def test_foreach10k_runs_when_small():
    run = memory.run(source("foreach10k"), {"count": 5})
    assert run.state == states.SUCCESS
    assert [r.value for r in run.runs("r")] == ["1", "2", "3", "4", "5"]
