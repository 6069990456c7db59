"""Routes of the customer API. Each module owns its own `urlpatterns`."""
from django.urls import include, path

urlpatterns = [
    path("", include("wallet.api.accounts")),
    path("", include("wallet.api.privacy")),
    path("", include("merchants.api.directory")),
    path("", include("wallet.api.cards")),
    path("", include("wallet.api.claims")),
    path("", include("wallet.api.external_cards")),
    path("", include("wallet.api.preferences")),
    path("", include("wallet.api.passes")),
]
