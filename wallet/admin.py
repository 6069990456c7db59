"""Wallet admin: cards, the ledger, purchases and redemptions, scoped per merchant (core.admin_base).

Money changes only through the services: a card's "Adjust points" page calls `adjust_points`, a ledger
entry's "Reverse" page calls `reverse_entry`; both need a reason and record who did it. Everything else
here is read-only. Other apps add ledger filters (the POS app adds "device") through
`LedgerEntryAdmin.extra_list_filters`.
"""
import csv

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_base import MerchantScopedAdmin, ReadOnlyAdmin
from core.errors import TesseraError
from core.tenancy import ADMIN_ROLES, changeable_merchant_ids
from wallet.forms import AdjustPointsForm, ReverseEntryForm
from wallet.models import Card, Customer, DomainEvent, IdempotencyRecord, LedgerEntry, Purchase, Redemption, Wallet
from wallet.services import adjust_points, reverse_entry
from wallet.services.reversals import REVERSIBLE_KINDS

CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(CSV_FORMULA_STARTS) and not _is_number(text) else text


def may_change_points(user, merchant_id: int) -> bool:
    """Owners and managers adjust and reverse points of their merchants' cards; superusers of any."""
    allowed = changeable_merchant_ids(user, ADMIN_ROLES)
    return allowed is None or merchant_id in allowed


def _is_number(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@admin.register(Customer)
class CustomerAdmin(MerchantScopedAdmin):
    """Customers are seen by the merchants they hold a card with; their account is theirs to change."""

    merchant_lookup = "wallet__cards__merchant"
    change_roles = ()
    staff_can_add = False
    list_display = ("id", "user", "time_zone", "locale", "created_at")
    search_fields = ("user__username", "user__email", "user__phone")
    raw_id_fields = ("user",)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    merchant_lookup = "cards__merchant"
    list_display = ("id", "customer", "created_at")


@admin.register(Card)
class CardAdmin(MerchantScopedAdmin):
    change_roles = ()  # read-only; points change through the "Adjust points" page below
    staff_can_add = False
    list_display = ("number", "merchant", "program", "status", "balance", "lifetime_points", "tier")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "status", ("tier", admin.RelatedOnlyFieldListFilter))
    search_fields = ("number",)
    list_select_related = ("merchant", "program", "tier")
    readonly_fields = ("wallet", "program", "merchant", "number", "balance", "lifetime_points", "tier",
                       "created_at", "closed_at", "adjust_link")

    @admin.display(description="Points")
    def adjust_link(self, obj):
        url = reverse("admin:wallet_card_adjust", args=[obj.pk])
        return format_html('<a class="button" href="{}">Adjust points</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.adjust_view)
        return [path("<int:card_id>/adjust/", view, name="wallet_card_adjust"), *super().get_urls()]

    def adjust_view(self, request, card_id):
        """Add or remove points with a reason; the ledger records who did it."""
        card = get_object_or_404(self.get_queryset(request), pk=card_id)
        if not may_change_points(request.user, card.merchant_id):
            return HttpResponse("You may not change points of this card.", status=403)
        form = AdjustPointsForm(request.POST or None, card=card)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = adjust_points(
                    card, delta=data["delta"], reason=data["reason"], actor=request.user,
                    idempotency_key=data["idempotency_key"], source="admin",
                    store_id=data["store"].pk if data["store"] else None,
                )
            except TesseraError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"{result.delta:+d} points on card {card.number}; balance {result.balance}.")
                return HttpResponseRedirect(reverse("admin:wallet_card_change", args=[card.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "card": card, "form": form,
                   "title": f"Adjust points on card {card.number}"}
        return TemplateResponse(request, "admin/wallet/card/adjust_points.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "card", "kind", "delta", "balance_after", "store", "source", "actor",
                    "reason", "offer_title", "reverse_link")
    list_filter = (
        ("store", admin.RelatedOnlyFieldListFilter),
        "kind",
        ("occurred_at", admin.DateFieldListFilter),
        "source",
        ("actor", admin.RelatedOnlyFieldListFilter),
    )
    extra_list_filters: list = []  # appended by integration apps (see module docstring)
    date_hierarchy = "occurred_at"
    search_fields = ("card__number", "reason", "purchase__external_id", "offer_title")
    list_select_related = ("card", "store", "actor")
    actions = ["export_csv"]

    def get_list_filter(self, request):
        return (*self.list_filter, *self.extra_list_filters)

    @admin.display(description="Reverse")
    def reverse_link(self, obj):
        if obj.kind not in REVERSIBLE_KINDS:
            return ""
        return format_html('<a href="{}">Reverse…</a>', reverse("admin:wallet_ledgerentry_reverse", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view(self.reverse_view)
        return [path("<int:entry_id>/reverse/", view, name="wallet_ledgerentry_reverse"), *super().get_urls()]

    def reverse_view(self, request, entry_id):
        """Undo one entry with a reason, once; the ledger keeps both."""
        entry = get_object_or_404(self.get_queryset(request).select_related("card"), pk=entry_id)
        if not may_change_points(request.user, entry.merchant_id):
            return HttpResponse("You may not change points of this card.", status=403)
        form = ReverseEntryForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = reverse_entry(entry, reason=form.cleaned_data["reason"], actor=request.user,
                                       idempotency_key=form.cleaned_data["idempotency_key"])
            except TesseraError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Entry {entry.pk} reversed ({result.delta:+d}); balance {result.balance}.")
                return HttpResponseRedirect(reverse("admin:wallet_ledgerentry_changelist"))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "entry": entry, "form": form,
                   "title": f"Reverse ledger entry {entry.pk}"}
        return TemplateResponse(request, "admin/wallet/ledgerentry/reverse.html", context)

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="ledger.csv"'
        writer = csv.writer(response)
        writer.writerow(["id", "occurred_at", "card", "kind", "delta", "balance_after", "store", "source", "actor",
                         "reason", "purchase", "reverses", "offer"])
        rows = queryset.select_related("card", "store", "actor", "purchase").order_by("id")
        for entry in rows.iterator(chunk_size=2000):
            writer.writerow([csv_safe(value) for value in (
                entry.pk, entry.occurred_at.isoformat(), entry.card.number, entry.kind, entry.delta,
                entry.balance_after, entry.store.name if entry.store else "", entry.source,
                entry.actor.get_username() if entry.actor else "", entry.reason,
                entry.purchase.external_id if entry.purchase else "", entry.reverses_id or "", entry.offer_title,
            )])
        return response


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "merchant", "store", "card", "amount", "currency", "points_earned", "status",
                    "occurred_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), ("store", admin.RelatedOnlyFieldListFilter),
                   "status", ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("external_id", "card__number", "receipt_code")
    list_select_related = ("merchant", "store", "card")


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ("coupon_code", "merchant", "card", "reward", "points", "status", "sale_external_id",
                    "points_returned", "expires_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "status")
    search_fields = ("coupon_code", "card__number", "sale_external_id")
    list_select_related = ("merchant", "card", "reward")


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "merchant", "customer_id", "occurred_at")
    list_filter = ("event_type",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "merchant", "operation", "created_at")
    list_filter = ("operation",)
