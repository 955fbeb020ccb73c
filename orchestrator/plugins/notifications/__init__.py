"""``io.kestra.plugin.notifications.*``: chat notifications over incoming webhooks.

Each service has its module (``teams``, ``discord``, ``google``); Slack's types live in
:mod:`orchestrator.plugins.slack.notifications` (they answer to the older
``io.kestra.plugin.notifications.slack.*`` names too) and e-mail in :mod:`orchestrator.plugins.email`.
:mod:`._base` holds the HTTP call and the execution summary of the ``*Execution`` types.
"""
