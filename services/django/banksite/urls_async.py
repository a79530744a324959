"""The same routes as banksite.urls, served by the async view (MODE=django-asgi)."""

from django.urls import path

from banksite.urls import handler400, handler404, handler500  # noqa: F401 - Django reads them from here
from currency import async_views

urlpatterns = [
    path("currency/convert", async_views.convert),
    path("currency/convert/", async_views.convert),
    path("healthz", async_views.healthz),
]
