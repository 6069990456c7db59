"""Being built (issue 8): GET /api/v1/offers."""
urlpatterns = []
