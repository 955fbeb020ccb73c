"""``io.kestra.plugin.tencent``: Tencent Cloud IM / QQ notifications (:mod:`.qq`)."""
