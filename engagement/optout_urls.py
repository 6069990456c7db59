"""Being built (issue 8): one-click opt-out links."""
urlpatterns = []
