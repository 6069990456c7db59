from django.urls import include, path

urlpatterns = [
    path("", include("pos_integration.api.keys")),
    path("", include("pos_integration.api.device")),
    path("", include("pos_integration.api.counter")),
    path("", include("pos_integration.api.counter_writes")),
    path("", include("pos_integration.api.offline")),
]
