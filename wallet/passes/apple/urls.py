"""Apple's PassKit web service routes, mounted at /passkit/ (pass.json's webServiceURL)."""
from django.urls import path

from . import webservice

app_name = "passkit"

urlpatterns = [
    path(
        "v1/devices/<str:device_library_identifier>/registrations/<str:pass_type_identifier>/<str:serial_number>",
        webservice.registration,
        name="registration",
    ),
    path(
        "v1/devices/<str:device_library_identifier>/registrations/<str:pass_type_identifier>",
        webservice.updated_serials,
        name="updated-serials",
    ),
    path("v1/passes/<str:pass_type_identifier>/<str:serial_number>", webservice.latest_pass, name="latest-pass"),
    path("v1/log", webservice.device_log, name="log"),
]
