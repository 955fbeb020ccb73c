"""``io.kestra.plugin.scripts``: Python, Shell and Node scripts run by the Process task runner
(see ``docs/scripts.md``), and the legacy ``io.kestra.core.tasks.scripts`` tasks."""
