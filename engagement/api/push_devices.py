"""Being built (issue 8): the wallet app registers its push token."""
urlpatterns = []
