"""WSGI entry point (gunicorn orchestrator.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
application = get_wsgi_application()

# A web server started on its own (not through `manage.py server`) checks the same unsafe defaults.
from accounts_app.checks import refuse_unsafe_defaults  # noqa: E402

refuse_unsafe_defaults()
