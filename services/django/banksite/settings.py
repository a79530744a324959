"""Settings of the lab's Django service, all from the environment (see contract/endpoint.py).

The lab passes every variable read here; started by hand without one, the service stops with
ImproperlyConfigured saying what to set (manage.py prints it without a traceback).
"""

import os

from django.core.exceptions import ImproperlyConfigured
from psycopg.conninfo import conninfo_to_dict

from contract.endpoint import POOL_TIMEOUT, MissingSetting, Settings

try:
    LAB = Settings.from_environ()
except MissingSetting as missing:
    raise ImproperlyConfigured(str(missing)) from None

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:  # a secret: from the environment only, never a default here
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. The lab passes one to every server it starts (contract.serve: "
        "yours, or a clearly-named development key); to start a server or run manage.py by hand, set it yourself."
    )
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS: list[str] = ["currency"]
# CommonMiddleware sets Content-Length, without which runserver closes every connection.
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
# MODE=django-asgi routes to the async view (contract/modes.py sets DJANGO_URLCONF)
ROOT_URLCONF = os.environ.get("DJANGO_URLCONF", "banksite.urls")
WSGI_APPLICATION = "banksite.wsgi.application"
ASGI_APPLICATION = "banksite.asgi.application"
USE_TZ = True

_db = conninfo_to_dict(LAB.database_url)
_options: dict[str, object] = {"connect_timeout": 3}
if LAB.db_pool:
    # Django's own psycopg pool; its timeout bounds the wait for a free connection, so an
    # exhausted pool or a database that is down answers 503 within seconds.
    _options["pool"] = {"min_size": LAB.db_pool_open, "max_size": LAB.db_pool_size, "timeout": POOL_TIMEOUT}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.get("dbname", "lab"),
        "USER": _db.get("user", "lab"),
        "PASSWORD": _db.get("password", ""),
        "HOST": _db.get("host", "127.0.0.1"),
        "PORT": _db.get("port", "5432"),
        "CONN_MAX_AGE": 0,
        "OPTIONS": _options,
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # runserver logs every request at INFO: under load that is the benchmark's bottleneck.
    "loggers": {"django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False}},
}
