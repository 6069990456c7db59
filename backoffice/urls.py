"""Back office pages under /admin/reports/, each behind the admin's login and merchant scoping."""
from django.urls import path

from backoffice import billing_views, liability_views, reconciliation_views

app_name = "backoffice"

urlpatterns = [
    path("reconciliation/", reconciliation_views.reconciliation, name="reconciliation"),
    path("reconciliation.csv", reconciliation_views.reconciliation_csv, name="reconciliation-csv"),
    path("liability/", liability_views.liability, name="liability"),
    path("billing/", billing_views.billing, name="billing"),
    path("billing/checkout/", billing_views.checkout, name="billing-checkout"),
    path("billing/portal/", billing_views.portal, name="billing-portal"),
]
