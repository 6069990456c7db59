from django.urls import include, path

urlpatterns = [
    path("", include("pos_integration.api.keys")),
    path("", include("pos_integration.api.counter")),
]
