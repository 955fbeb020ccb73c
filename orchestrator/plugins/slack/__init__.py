"""``io.kestra.plugin.slack``: Slack notifications (incoming webhooks)."""
