"""``io.kestra.plugin.twilio``: SendGrid e-mail (:mod:`.sendgrid`); Twilio Notify lives in
:mod:`orchestrator.plugins.notifications.twilio`."""
