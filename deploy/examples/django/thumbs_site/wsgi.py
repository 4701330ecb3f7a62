"""WSGI entry point: gunicorn thumbs_site.wsgi (from deploy/examples/django)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbs_site.settings")
application = get_wsgi_application()
