"""One-click opt-out links (engagement.optout makes them; engagement.optout_views answers them)."""
from django.urls import path

from engagement.optout_views import opt_out

urlpatterns = [path("o/<str:token>/", opt_out, name="engagement-opt-out")]
