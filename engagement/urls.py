"""Engagement's public pages (one-click opt-out), under /e/."""
from django.urls import include, path

urlpatterns = [
    path("", include("engagement.optout_urls")),
]
