from django.urls import path

from currency import views

urlpatterns = [
    path("currency/convert", views.convert),
    path("currency/convert/", views.convert),
    path("healthz", views.healthz),
]

handler400 = views.bad_request
handler404 = views.not_found_page
handler500 = views.server_error
