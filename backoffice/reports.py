"""The back office's report pages, listed on the admin index for anyone who may open the admin."""
from django.urls import reverse

REPORTS = (
    ("backoffice:reconciliation", "Reconciliation",
     "POS purchases against points issued, redeemed, expired, reversed and adjusted; discrepancies; CSV."),
    ("backoffice:liability", "Points liability",
     "Outstanding points, their money value, expected breakage and upcoming expiries."),
    ("backoffice:billing", "Billing", "Your Tessera subscription: plans, checkout and the billing portal."),
)


def report_links() -> list[dict]:
    return [{"url": reverse(name), "title": title, "description": text} for name, title, text in REPORTS]
