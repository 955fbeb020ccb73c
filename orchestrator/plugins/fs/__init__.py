"""``io.kestra.plugin.fs``: file systems (the local one for now)."""
