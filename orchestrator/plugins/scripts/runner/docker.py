"""``io.kestra.plugin.scripts.runner.docker.Docker`` and the other container task runners Kestra
names: known types, so that flows carrying them parse; script tasks using them are refused at
validation unless ``CELESTRA_SCRIPTS_CONTAINER_FALLBACK=process`` (see docs/scripts.md)."""
from __future__ import annotations

from orchestrator.engine.plugins import OTHER, register

from orchestrator.plugins.core._common import CorePlugin, OpenProps


class ContainerRunner(CorePlugin):
    kind = OTHER
    is_task_runner = True
    Props = OpenProps


@register
class Docker(ContainerRunner):
    """Run the script in a Docker container (host, pullPolicy, volumes, cpu, memory...)."""

    type = "io.kestra.plugin.scripts.runner.docker.Docker"


@register
class Kubernetes(ContainerRunner):
    type = "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"
    aliases = ("io.kestra.plugin.kubernetes.runner.Kubernetes",)


@register
class AwsBatch(ContainerRunner):
    type = "io.kestra.plugin.ee.aws.runner.Batch"
    aliases = ("io.kestra.plugin.aws.runner.AwsBatch",)


@register
class AzureBatch(ContainerRunner):
    type = "io.kestra.plugin.ee.azure.runner.Batch"
    aliases = ("io.kestra.plugin.azure.runner.AzureBatch",)


@register
class GcpBatch(ContainerRunner):
    type = "io.kestra.plugin.ee.gcp.runner.Batch"
    aliases = ("io.kestra.plugin.gcp.runner.GcpBatch",)


@register
class GcpCloudRun(ContainerRunner):
    type = "io.kestra.plugin.ee.gcp.runner.CloudRun"
    aliases = ("io.kestra.plugin.gcp.runner.GcpCloudRun",)
