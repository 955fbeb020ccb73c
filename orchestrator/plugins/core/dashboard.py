"""``io.kestra.plugin.core.dashboard``: chart and data-source types of dashboards.

Dashboards are a UI feature; the types are registered so that a dashboard document (or a
plugin default aimed at them) is not reported as unknown. Their properties are not checked.
"""
from __future__ import annotations

from orchestrator.engine.plugins import OTHER, Plugin, register

from ._common import OpenProps


def _open_type(name: str) -> type[Plugin]:
    return type(name.rsplit(".", 1)[-1], (Plugin,), {
        "type": name, "kind": OTHER, "Props": OpenProps, "__module__": __name__,
        "__doc__": f"Dashboard type {name} (stored, not interpreted).",
    })


Bar = register(_open_type("io.kestra.plugin.core.dashboard.chart.Bar"))
Markdown = register(_open_type("io.kestra.plugin.core.dashboard.chart.Markdown"))
Pie = register(_open_type("io.kestra.plugin.core.dashboard.chart.Pie"))
Table = register(_open_type("io.kestra.plugin.core.dashboard.chart.Table"))
TimeSeries = register(_open_type("io.kestra.plugin.core.dashboard.chart.TimeSeries"))
Executions = register(_open_type("io.kestra.plugin.core.dashboard.data.Executions"))
Logs = register(_open_type("io.kestra.plugin.core.dashboard.data.Logs"))
Metrics = register(_open_type("io.kestra.plugin.core.dashboard.data.Metrics"))
