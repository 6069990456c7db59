"""Engagement admin, scoped per merchant (core.admin_base): offers, audiences (with how many members match
now, also for rules not saved yet), campaigns (scheduled and cancelled through engagement.campaigns, with
what happened to each recipient), and the read-only send log and planned messages, so a merchant can see
why a customer got nothing. Owners set the frequency caps and sender name.

Push devices are the customers' own phones: no merchant sees them; a superuser may look, read-only.
"""
import importlib

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.admin_base import MerchantScopedAdmin, ReadOnlyAdmin, SuperuserReadOnlyAdmin
from core.errors import TesseraError
from core.tenancy import OWNER
from engagement.audiences import audience_size
from engagement.forms import AudienceForm, CampaignForm, MerchantEngagementForm, OfferForm
from engagement.models import Audience, Campaign, MerchantEngagement, Message, Offer, PushDevice, SendLog

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


class EngagementAdmin(MerchantScopedAdmin):
    """A merchant's own row: its merchant is chosen once (preset when the user runs only one) and then
    fixed, so the row's stores, tiers and rewards cannot end up another merchant's."""

    def get_readonly_fields(self, request, obj=None):
        return ("merchant", *self.readonly_fields) if obj is not None else self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        merchant_ids = self.editable_merchant_ids(request)
        if merchant_ids is not None and len(merchant_ids) == 1:
            initial.setdefault("merchant", next(iter(merchant_ids)))
        return initial


# Offers --------------------------------------------------------------------------------------------

@admin.register(Offer)
class OfferAdmin(EngagementAdmin):
    form = OfferForm
    list_display = ("title", "merchant", "kind", "valid_from", "valid_until", "audience", "is_welcome", "is_active")
    list_filter = (("merchant", RELATED_ONLY), "kind", "is_active", "is_welcome")
    search_fields = ("title", "coupon_code")
    list_select_related = ("merchant", "audience")
    fieldsets = (
        (None, {"fields": ("merchant", "title", "description", "kind", "is_active")}),
        ("What it gives (fill the field of its kind)", {
            "fields": ("multiplier", "bonus_points", "reward", "discount_text", "coupon_code")}),
        ("When and where (store local time)", {
            "fields": ("valid_from", "valid_until", "stores", "weekdays", "daily_start", "daily_end")}),
        ("Who", {"fields": ("audience", "is_welcome", "welcome_valid_days")}),
    )


# Audiences -----------------------------------------------------------------------------------------

@admin.register(Audience)
class AudienceAdmin(EngagementAdmin):
    """The change page says how many members match now; "Preview size" counts the rules as typed,
    without saving them."""

    form = AudienceForm
    list_display = ("name", "merchant", "created_at")
    list_filter = (("merchant", RELATED_ONLY),)
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("merchant", "name")}),
        ("Points and tiers", {"fields": ("tiers", "min_balance", "max_balance", "can_redeem", "near_reward_points")}),
        ("Visits", {"fields": ("min_days_since_visit", "max_days_since_visit", "min_visits", "visits_window_days")}),
        ("Who they are", {"fields": ("birthday_this_month", "purchase_categories", "near_store", "radius_km")}),
    )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_preview" in request.POST:
            return self.preview_view(request, object_id)
        if object_id is not None and request.method == "GET":
            saved = self.get_object(request, unquote(object_id))
            if saved is not None:
                size = audience_size(saved.merchant, saved, now=timezone.now())
                extra_context = {**(extra_context or {}), "audience_size": size}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def preview_view(self, request, object_id):
        """The change form again, as typed, with the number of members these rules match now."""
        saved = None
        if object_id is not None:
            saved = self.get_object(request, unquote(object_id))
            if saved is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
            if not self.has_change_permission(request, saved):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        subtitle = str(saved) if saved else None
        fieldsets = self.get_fieldsets(request, saved)
        form_class = self.get_form(request, saved, change=saved is not None, fields=flatten_fieldsets(fieldsets))
        form = form_class(request.POST, instance=saved)
        size = None
        if form.is_valid():
            rules = form.instance  # the typed values, in memory only: nothing is saved
            size = audience_size(form.form_merchant(), rules, now=timezone.now(),
                                 tier_ids=[tier.pk for tier in form.cleaned_data["tiers"]])
        admin_form = helpers.AdminForm(form, list(fieldsets), {}, self.get_readonly_fields(request, saved),
                                       model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{'Change' if saved else 'Add'} {self.opts.verbose_name}", "subtitle": subtitle,
            "adminform": admin_form, "object_id": object_id, "original": saved, "is_popup": False,
            "to_field": None, "media": self.media + admin_form.media, "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []), "preserved_filters": self.get_preserved_filters(request),
            "audience_size": size, "audience_preview": True,
        }
        return self.render_change_form(request, context, add=saved is None, change=saved is not None, obj=saved)


# Campaigns -----------------------------------------------------------------------------------------

def _campaign_service(name: str):
    """engagement.campaigns' `name`, or None while that module is not installed here."""
    try:
        campaigns = importlib.import_module("engagement.campaigns")
    except ImportError:
        return None
    return getattr(campaigns, name, None)


SERVICE_MISSING = "Scheduling is not available on this site yet (engagement.campaigns is missing); nothing changed."


@admin.register(Campaign)
class CampaignAdmin(EngagementAdmin):
    """A draft is edited here and planned with "Schedule" (one message per member at their own local
    send time); "Cancel" stops what is still pending. Both go through engagement.campaigns."""

    form = CampaignForm
    list_display = ("name", "merchant", "offer", "status", "send_on", "send_at", "scheduled_at")
    list_filter = (("merchant", RELATED_ONLY), "status")
    search_fields = ("name", "subject")
    list_select_related = ("merchant", "offer")
    readonly_fields = ("status", "scheduled_at", "created_by", "recipients")
    fields = ("merchant", "name", "offer", "audience", "channels", "subject", "message", "send_on", "send_at",
              "status", "scheduled_at", "created_by", "recipients")
    actions = ["schedule", "cancel"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            return self.fields  # planned messages were written from these values: no edits afterwards
        return super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Recipients")
    def recipients(self, obj):
        if obj is None or obj.pk is None:
            return "(shown after saving)"
        if obj.status == Campaign.Status.DRAFT:
            audience = obj.audience or obj.offer.audience
            size = audience_size(obj.merchant, audience, now=timezone.now())
            who = f"audience {audience.name}" if audience else "every member"
            phrase = "member matches" if size == 1 else "members match"
            return format_html("<strong>{}</strong> {} now ({}).", size, phrase, who)
        return _delivery_summary(obj)

    # Schedule and cancel: an action on the list, and a button on the change page ----------------------

    @admin.action(description="Schedule the selected campaigns", permissions=["change"])
    def schedule(self, request, queryset):
        for campaign in queryset:
            self._schedule(request, campaign)

    @admin.action(description="Cancel the selected campaigns (pending messages are not sent)", permissions=["change"])
    def cancel(self, request, queryset):
        for campaign in queryset:
            self._cancel(request, campaign)

    def _schedule(self, request, campaign) -> None:
        schedule_campaign = _campaign_service("schedule_campaign")
        if schedule_campaign is None:
            messages.error(request, SERVICE_MISSING)
            return
        try:
            planned = schedule_campaign(campaign, actor=request.user)
        except TesseraError as error:
            messages.error(request, f"{campaign.name}: {error.message}")
            return
        passed = getattr(planned, "passed", 0)
        note = f"; {passed} left out because their local send time had passed" if passed else ""
        messages.success(request, f"{campaign.name}: scheduled, {int(planned)} message(s) planned{note}.")

    def _cancel(self, request, campaign) -> None:
        cancel_campaign = _campaign_service("cancel_campaign")
        if cancel_campaign is None:
            messages.error(request, SERVICE_MISSING)
            return
        try:
            cancel_campaign(campaign)
        except TesseraError as error:
            messages.error(request, f"{campaign.name}: {error.message}")
            return
        messages.success(request, f"{campaign.name}: cancelled; messages not yet sent will be skipped.")

    def get_urls(self):
        return [
            path("<int:campaign_id>/schedule/", self.admin_site.admin_view(self.schedule_view),
                 name="engagement_campaign_schedule"),
            path("<int:campaign_id>/cancel/", self.admin_site.admin_view(self.cancel_view),
                 name="engagement_campaign_cancel"),
            *super().get_urls(),
        ]

    def schedule_view(self, request, campaign_id):
        return self._button(request, campaign_id, self._schedule)

    def cancel_view(self, request, campaign_id):
        return self._button(request, campaign_id, self._cancel)

    def _button(self, request, campaign_id, do):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_object_or_404(self.get_queryset(request), pk=campaign_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        do(request, campaign)
        return HttpResponseRedirect(reverse("admin:engagement_campaign_change", args=[campaign.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            buttons = []
            if obj.status == Campaign.Status.DRAFT:
                buttons.append(("Schedule", reverse("admin:engagement_campaign_schedule", args=[obj.pk])))
            if obj.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
                buttons.append(("Cancel campaign", reverse("admin:engagement_campaign_cancel", args=[obj.pk])))
            context["campaign_buttons"] = buttons
        return super().render_change_form(request, context, add, change, form_url, obj)


def _delivery_summary(campaign):
    """Planned messages, and every channel decision so far: sent, and skipped or failed by reason."""
    planned = Message.objects.filter(campaign=campaign)
    pending = planned.filter(status=Message.Status.PENDING).count()
    decisions = (SendLog.objects.filter(campaign=campaign).values("decision", "reason")
                 .annotate(count=Count("pk")).order_by("decision", "reason"))
    reasons = dict(SendLog.Reason.choices)
    lines = [(f"{planned.count()} message(s) planned, {pending} still pending",)]
    for row in decisions:
        if row["decision"] == SendLog.Decision.SENT:
            lines.append((f"sent: {row['count']}",))
        else:
            lines.append((f"{row['decision']}: {row['count']} ({reasons.get(row['reason'], row['reason'])})",))
    log_url = reverse("admin:engagement_sendlog_changelist") + f"?campaign__id__exact={campaign.pk}"
    return format_html("<ul>{}</ul><a href=\"{}\">Send log of this campaign</a>",
                       format_html_join("", "<li>{}</li>", lines), log_url)


# What happened to each message ---------------------------------------------------------------------

@admin.register(SendLog)
class SendLogAdmin(ReadOnlyAdmin):
    """Every decision on every channel: look up a card number to see why its customer got nothing."""

    list_display = ("decided_at", "card_number", "channel", "decision", "reason", "detail", "attempts", "campaign",
                    "local_time")
    list_filter = (("campaign", RELATED_ONLY), "channel", "decision", "reason",
                   ("decided_at", admin.DateFieldListFilter))
    search_fields = ("message__card__number",)
    list_select_related = ("campaign", "message__card")
    date_hierarchy = "decided_at"

    @admin.display(description="Card", ordering="message__card__number")
    def card_number(self, obj):
        return obj.message.card.number


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("due_at", "card", "kind", "campaign", "offer", "channels", "status", "processed_at")
    list_filter = (("campaign", RELATED_ONLY), "kind", "status", ("due_at", admin.DateFieldListFilter))
    search_fields = ("card__number",)
    list_select_related = ("card", "campaign", "offer")


@admin.register(MerchantEngagement)
class MerchantEngagementAdmin(EngagementAdmin):
    """Owners decide how often a customer may hear from them and the sender name shown."""

    change_roles = (OWNER,)
    form = MerchantEngagementForm
    list_display = ("merchant", "daily_cap", "weekly_cap", "sender_name")
    list_select_related = ("merchant",)


@admin.register(PushDevice)
class PushDeviceAdmin(SuperuserReadOnlyAdmin):
    """Platform support only, read-only; the token itself is never shown."""

    list_display = ("customer", "platform", "token_end", "is_active", "last_registered_at")
    list_filter = ("platform", "is_active")
    fields = ("customer", "platform", "token_end", "is_active", "created_at", "last_registered_at")
    readonly_fields = fields

    @admin.display(description="Token")
    def token_end(self, obj):
        return f"…{obj.token[-6:]}" if obj.token else ""
