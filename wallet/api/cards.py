"""Placeholder: routes are added by the module's owner."""

urlpatterns = []
