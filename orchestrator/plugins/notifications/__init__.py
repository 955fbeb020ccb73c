"""``io.kestra.plugin.notifications.*``: chat notifications over incoming webhooks.

Each service has its module (``teams``, ``discord``, ``google``); Slack's types live in
:mod:`orchestrator.plugins.slack.notifications` (they answer to the older
``io.kestra.plugin.notifications.slack.*`` names too) and e-mail in :mod:`orchestrator.plugins.email`.
The Teams, Discord and Google Chat types also answer to the names of Kestra's newer plugins
(``io.kestra.plugin.microsoft365.teams.*``, ``io.kestra.plugin.discord.*``,
``io.kestra.plugin.googleworkspace.chat.*``), which declare these as their aliases.
:mod:`._base` holds the HTTP call and the execution summary of the ``*Execution`` types.
"""
