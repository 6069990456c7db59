"""Being built (issue 8): one-click opt-out links (the view is a placeholder until then)."""
from django.http import HttpResponse
from django.urls import path


def _being_built(request, token):
    return HttpResponse("Not built yet.", status=501)


urlpatterns = [path("o/<str:token>/", _being_built, name="engagement-opt-out")]
