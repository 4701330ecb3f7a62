"""Settings of the gallery example: an image upload whose thumbnail and notification e-mail are
made by taskpipe workers. Everything that differs between a laptop and a test run comes from
the environment:

    GALLERY_DATA        directory of the SQLite database and the media files (./data)
    TASKPIPE_ENDPOINT   the head's --listen endpoint (tcp://localhost:5560)
    TASKPIPE_CURVE      "SERVER_PUB_FILE:PRODUCER_KEY_FILE" when the head uses CURVE (none)
    EMAIL_HOST, EMAIL_PORT  the SMTP server (localhost:8025, e.g. python3 -m aiosmtpd -n)
    GALLERY_SITE_URL    the site's address, for links in e-mails (http://localhost:8000)
"""

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO = BASE_DIR.parent.parent.parent

try:
    import taskpipe  # noqa: F401  (pip install ./clients/python)
except ImportError:  # or straight from this repository
    sys.path.insert(0, str(REPO / "clients" / "python"))

DATA_DIR = Path(os.environ.get("GALLERY_DATA", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "an example, not a secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = ["gallery"]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "thumbs_site.urls"
WSGI_APPLICATION = "thumbs_site.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.template.context_processors.media"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": DATA_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 20 << 20

EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "8025"))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = "gallery@example.com"

GALLERY_SITE_URL = os.environ.get("GALLERY_SITE_URL", "http://localhost:8000")

# The taskpipe head, and how long a web request may wait for it (submit, status).
TASKPIPE_ENDPOINT = os.environ.get("TASKPIPE_ENDPOINT", "tcp://localhost:5560")
TASKPIPE_CURVE = tuple(os.environ["TASKPIPE_CURVE"].split(":", 1)) \
    if os.environ.get("TASKPIPE_CURVE") else None
TASKPIPE_TIMEOUT = 2.0

LOGGING = {
    "version": 1,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"gallery": {"handlers": ["stderr"], "level": "INFO"},
                "taskpipe": {"handlers": ["stderr"], "level": "WARNING"}},
}
