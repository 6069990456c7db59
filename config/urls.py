"""Root URLs: admin, the API and its OpenAPI schema and docs (served from local static files)."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from crm_sync.inbound import crm_inbound
from merchants.billing.webhook import stripe_billing_webhook
from pos_integration.webhooks import pos_webhook

urlpatterns = [
    # The counter first: a till's every scan and sale resolves without walking the patterns above it.
    path("api/pos/v1/", include("pos_integration.api.urls")),
    path("admin/reports/", include("backoffice.urls")),
    # Before the admin: its catch-all would send these public pages to the login page.
    path("admin/password-reset/", include("merchants.password_reset")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("wallet.api.urls")),
    path("api/v1/", include("engagement.api.urls")),
    path("hooks/pos/<uuid:connection_id>/", pos_webhook, name="pos-webhook"),
    path("hooks/crm/<uuid:connection_id>/", crm_inbound, name="crm-inbound"),
    path("hooks/stripe/", stripe_billing_webhook, name="stripe-billing-webhook"),
    path("api/", include("core.urls")),
    path("c/", include("wallet.card_page_urls")),
    path("till/", include("pos_integration.till_urls")),
    path("passkit/", include("wallet.passes.apple.urls")),
    path("e/", include("engagement.urls")),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
