"""The points liability page, /admin/reports/liability/: one merchant at a time, chosen among the
merchants the signed-in owner or manager may see. A merchant id outside that set is a 404, never data."""
from django.contrib import admin
from django.shortcuts import render

from backoffice.liability import build_liability
from backoffice.merchant_choice import chosen_merchant, reportable_merchants


def _liability(request):
    merchants = reportable_merchants(request.user)
    merchant = chosen_merchant(request.user, request.GET.get("merchant"))
    context = {
        **admin.site.each_context(request),
        "title": "Points liability",
        "merchants": merchants,
        "merchant": merchant,
        "report": build_liability(merchant) if merchant else None,
    }
    return render(request, "backoffice/liability.html", context)


liability = admin.site.admin_view(_liability)
