"""The reconciliation page and its CSV, under /admin/reports/, for a merchant's owners and managers.

The page works under a strict Content-Security-Policy (sent with it): no script at all, no inline
style, nothing from another origin. The chart is inline SVG drawn here on the server, so it needs
neither JavaScript nor a charting library, and prints and screenshots as it looks.
"""
import csv
import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from backoffice.merchant_choice import chosen_merchant, reportable_merchants
from backoffice.reconciliation import MAX_PERIOD_DAYS, ReconciliationReport, build_reconciliation, local_today
from core.money import to_major_units
from merchants.models import Merchant, Store

DEFAULT_PERIOD_DAYS = 30
CSV_LISTED_PER_KIND = 10_000  # the export is the accountant's worklist: list far more than the page
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "img-src 'self' data:", "script-src 'self'", "style-src 'self'", "object-src 'none'",
    "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])


class ReconciliationForm(forms.Form):
    merchant = forms.TypedChoiceField(coerce=int)
    store = forms.ModelChoiceField(
        queryset=Store.objects.none(), required=False, empty_label="All stores",
        error_messages={"invalid_choice": "Choose one of this merchant's stores."},
    )
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, merchants, merchant: Merchant):
        super().__init__(data)
        self.merchant = merchant
        self.fields["merchant"].choices = [(m.pk, m.name) for m in merchants]
        self.fields["store"].queryset = Store.objects.filter(merchant=merchant).order_by("name")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The end date is before the start date.")
            elif (end - start).days + 1 > MAX_PERIOD_DAYS:
                self.add_error("end", f"A report covers at most {MAX_PERIOD_DAYS} days.")
        return cleaned


def _bound_form(request) -> ReconciliationForm:
    """The filters from the query string, defaulting to the user's first merchant and its last 30 days.
    A merchant outside the user's own is a 404: the page never says whether it exists."""
    merchants = reportable_merchants(request.user)
    merchant = chosen_merchant(request.user, request.GET.get("merchant"))
    if merchant is None:
        raise Http404("No such merchant.")
    end = local_today(merchant)
    data = {
        "merchant": str(merchant.pk), "store": request.GET.get("store", ""),
        "start": request.GET.get("start") or (end - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)).isoformat(),
        "end": request.GET.get("end") or end.isoformat(),
    }
    return ReconciliationForm(data, merchants=merchants, merchant=merchant)


def _report(form: ReconciliationForm, listed_per_kind: int | None = None) -> ReconciliationReport:
    data = form.cleaned_data
    options = {"listed_per_kind": listed_per_kind} if listed_per_kind else {}
    return build_reconciliation(form.merchant, data["start"], data["end"], data["store"], **options)


def _query(form: ReconciliationForm) -> str:
    data = form.cleaned_data
    return urlencode({
        "merchant": form.merchant.pk, "store": data["store"].pk if data["store"] else "",
        "start": data["start"].isoformat(), "end": data["end"].isoformat(),
    })


@require_safe
def _reconciliation(request):
    form = _bound_form(request)
    context = {**admin.site.each_context(request), "title": "Reconciliation", "form": form}
    if form.is_valid():
        report = _report(form)
        currency = form.merchant.currency
        context.update(
            report=report, chart=points_chart(report), csv_url=f"{reverse('backoffice:reconciliation-csv')}?"
            f"{_query(form)}",
            sales_amount=_major(report.sales.amount, currency),
            refunded_amount=_major(report.sales.refunded_amount, currency),
            day_rows=[(row, _major(row.sales.amount, currency)) for row in report.days],
        )
    response = render(request, "backoffice/reconciliation.html", context)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@require_safe
def _reconciliation_csv(request):
    form = _bound_form(request)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Invalid filters. {problems}", status=400, content_type="text/plain; charset=utf-8")
    report = _report(form, CSV_LISTED_PER_KIND)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    scope = f"-store-{report.store.pk}" if report.store else ""
    response["Content-Disposition"] = (
        f'attachment; filename="reconciliation-{report.merchant.slug}{scope}-{report.start}-{report.end}.csv"'
    )
    write_csv(response, report, absolute=request.build_absolute_uri)
    return response


reconciliation = admin.site.admin_view(_reconciliation)
reconciliation_csv = admin.site.admin_view(_reconciliation_csv)


# CSV ---------------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP's advice).
    Numbers are written as numbers: -30 points is a value, not a formula, and must stay summable."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


DAY_COLUMNS = ["date", "purchases", "purchase amount", "refunded purchases", "refunded amount", "points issued",
               "points redeemed", "points expired", "points reversed", "points adjusted", "net points change"]


def _day_cells(label, sales, points, currency) -> list:
    return [label, sales.count, _major(sales.amount, currency), sales.refunded_count,
            _major(sales.refunded_amount, currency), points.issued, points.redeemed, points.expired,
            points.reversed, points.adjusted, points.net]


def write_csv(out, report: ReconciliationReport, *, absolute) -> None:
    """Three blocks an accountant can read top to bottom: what was asked, per day with the total,
    then every discrepancy with a link to its admin page."""
    writer = csv.writer(out)
    rows = [
        ["Tessera reconciliation"],
        ["merchant", report.merchant.name],
        ["store", report.store.name if report.store else "All stores"],
        ["period", report.start.isoformat(), report.end.isoformat()],
        ["time zone", report.merchant.time_zone],
        ["currency", report.merchant.currency],
        [],
        DAY_COLUMNS,
    ]
    currency = report.merchant.currency
    rows += [_day_cells(row.day.isoformat(), row.sales, row.points, currency) for row in report.days]
    rows.append(_day_cells("total", report.sales, report.points, currency))
    points = report.points
    rows += [
        [],
        ["identity", "issued - redeemed - expired - reversed + adjusted", points.computed_net,
         "net", points.net, "adds up" if points.identity_holds else "DOES NOT ADD UP"],
        [],
        ["discrepancies", report.discrepancy_total],
        ["kind", "date", "object", "detail", "link"],
    ]
    rows += [
        [d.title, d.day.isoformat() if d.day else "now", d.subject, d.detail, absolute(d.admin_url)]
        for d in report.discrepancies
    ]
    if report.unlisted_discrepancies:
        rows.append([f"{report.unlisted_discrepancies} more not listed"])
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)


def _major(amount: int, currency: str) -> str:
    return str(to_major_units(amount, currency))


# Chart -------------------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 760, 260
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 12, 30, 30


@dataclass(frozen=True)
class Bar:
    """One SVG rectangle; coordinates are strings already, so no template locale can write "12,5"."""

    x: str
    y: str
    width: str
    height: str
    series: str
    label: str


def _coordinate(value: float) -> str:
    return f"{value:.2f}"


def points_chart(report: ReconciliationReport) -> dict:
    """Issued points as bars up from the zero line, redeemed points as bars down from it, per day.

    Mirrored rather than side by side so a year of days stays readable at one pixel a bar; both
    share one scale so their heights compare. Each bar carries a <title>, the browser's own tooltip.
    """
    days = report.days
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    half = (CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM) / 2
    zero_y = PLOT_TOP + half
    scale_max = max([1, *(abs(r.points.issued) for r in days), *(abs(r.points.redeemed) for r in days)])
    slot = plot_width / max(len(days), 1)
    bar_width = max(slot * 0.8, 0.5)
    bars = []
    for index, row in enumerate(days):
        x = PLOT_LEFT + index * slot + (slot - bar_width) / 2
        for series, value, sign in (("issued", row.points.issued, 1), ("redeemed", row.points.redeemed, -1)):
            if not value:
                continue
            height = abs(value) / scale_max * half
            top = zero_y - height if sign * value > 0 else zero_y  # a net negative day points the other way
            bars.append(Bar(
                _coordinate(x), _coordinate(top), _coordinate(bar_width), _coordinate(height), series,
                f"{row.day.isoformat()}: {value} points {series}",
            ))
    ticks = sorted({0, len(days) // 2, len(days) - 1}) if days else []
    return {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "bars": bars, "max_label": scale_max,
        "plot_left": PLOT_LEFT, "plot_right": CHART_WIDTH - PLOT_RIGHT, "label_x": PLOT_LEFT - 6,
        "top": PLOT_TOP, "zero_y": _coordinate(zero_y), "bottom": _coordinate(PLOT_TOP + 2 * half),
        "x_labels": [{"x": _coordinate(PLOT_LEFT + (i + 0.5) * slot), "text": days[i].day.isoformat()} for i in ticks],
        "label_y": CHART_HEIGHT - 10,
        "legend_x": CHART_WIDTH - PLOT_RIGHT - 220,
        "description": (
            f"Points issued (up, total {report.points.issued}) and redeemed (down, total {report.points.redeemed}) "
            f"per day from {report.start} to {report.end}."
        ),
    }
