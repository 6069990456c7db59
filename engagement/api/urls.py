"""Routes of the engagement part of the customer API (/api/v1/). Each module owns its urlpatterns."""
from django.urls import include, path

urlpatterns = [
    path("", include("engagement.api.offers")),
    path("", include("engagement.api.push_devices")),
]
