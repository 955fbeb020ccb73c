"""``io.kestra.plugin.git``: Clone, SyncFlows, SyncNamespaceFiles, PushFlows, PushNamespaceFiles (the git CLI)."""
