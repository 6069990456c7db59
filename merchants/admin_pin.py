"""Counter PINs in the admin: a staff member's page shows whether their PIN is set or locked, and a
"Set counter PIN" page lets the merchant's owners and managers give a new cashier a PIN or reset a
forgotten one, which also lifts a lock.

The PIN goes straight to `pos_integration.cashiers.set_pin` (the same rules and hashing as the shell
command): it is never stored elsewhere, logged, echoed back into the form, or shown as its hash. The
audit history gets a "Counter PIN set" row with who did it, and nothing of the PIN.
"""
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters

from core.errors import ValidationFailed
from core.tenancy import MANAGER, OWNER, merchant_roles
from merchants.models import StaffMember
from pos_integration.cashiers import set_pin

PIN_SET_REASON = "Counter PIN set"


def _pin_input() -> forms.PasswordInput:
    # render_value stays False: a refused form never sends the typed PIN back to the browser.
    return forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "new-password",
                                      "minlength": 4, "maxlength": 8})


class CounterPinForm(forms.Form):
    pin = forms.CharField(label="New PIN", max_length=8, widget=_pin_input(),
                          help_text="4 to 8 digits, not a repeated or running sequence such as 1111 or 1234.")
    pin_confirmation = forms.CharField(label="New PIN again", max_length=8, widget=_pin_input())

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("pin") and cleaned.get("pin_confirmation") and cleaned["pin"] != cleaned["pin_confirmation"]:
            self.add_error("pin_confirmation", "The two PINs differ.")
        return cleaned


def may_set_pin(user, staff: StaffMember) -> bool:
    """Owners set the PIN of anyone at their merchant; managers of cashiers and their own. A manager who
    could reset an owner's PIN could sign in as that owner at the till."""
    if user.is_superuser:
        return True
    role = merchant_roles(user).get(staff.merchant_id)
    if role == OWNER:
        return True
    return role == MANAGER and (staff.role == StaffMember.Role.CASHIER or staff.user_id == user.pk)


def record_pin_set(staff: StaffMember, user) -> None:
    """A row in the staff member's History: who set a PIN, when. The PIN fields are not in the history
    model at all (StaffMember.history excludes them), so there is nothing of the PIN to copy."""
    history_model = StaffMember.history.model
    history_model.objects.create(
        history_date=timezone.now(), history_type="~", history_user=user, history_change_reason=PIN_SET_REASON,
        **{field.attname: getattr(staff, field.attname) for field in history_model.tracked_fields},
    )


def pin_status(staff: StaffMember, now=None) -> str:
    """What the change page says about the PIN, with a lock's end in the merchant's time zone."""
    if not staff.pin_hash:
        return "No PIN yet: this person cannot sign in at a till."
    now = now or timezone.now()
    if staff.pin_locked_until and staff.pin_locked_until > now:
        until = timezone.localtime(staff.pin_locked_until, ZoneInfo(staff.merchant.time_zone))
        return (f"Locked after too many wrong PINs until {until:%Y-%m-%d %H:%M} ({staff.merchant.time_zone}). "
                "Setting a new PIN unlocks now.")
    if staff.failed_pin_attempts:
        return f"PIN set, not locked ({staff.failed_pin_attempts} wrong in a row since the last right one)."
    return "PIN set, not locked."


class CounterPinAdminMixin:
    """For StaffMemberAdmin: the PIN status field, the "Set counter PIN" button and its page."""

    @admin.display(description="Counter PIN")
    def counter_pin(self, obj):
        return pin_status(obj)

    def get_urls(self):
        view = self.admin_site.admin_view(sensitive_post_parameters("pin", "pin_confirmation")(self.pin_view))
        return [path("<int:staff_id>/pin/", view, name="merchants_staffmember_pin"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        staff = self.get_object(request, object_id)
        if staff is not None and may_set_pin(request.user, staff):
            extra_context = {**(extra_context or {}),
                             "pin_url": reverse("admin:merchants_staffmember_pin", args=[staff.pk])}
        return super().change_view(request, object_id, form_url, extra_context)

    def pin_view(self, request, staff_id):
        """Set or reset a PIN. Another merchant's staff are not found; staff one may see but not give a
        PIN (a manager looking at an owner) are refused."""
        staff = get_object_or_404(self.get_queryset(request).select_related("merchant"), pk=staff_id)
        if not may_set_pin(request.user, staff):
            raise PermissionDenied
        form = CounterPinForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    set_pin(staff, form.cleaned_data["pin"])
                    record_pin_set(staff, request.user)
            except ValidationFailed as error:
                form.add_error("pin", error.message)
            else:
                messages.success(request, f"New counter PIN set for {staff.display_name}; any lock is lifted.")
                return HttpResponseRedirect(reverse("admin:merchants_staffmember_change", args=[staff.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "staff": staff,
                   "form": form, "status": pin_status(staff), "title": f"Set counter PIN for {staff.display_name}"}
        return TemplateResponse(request, "admin/merchants/staffmember/set_pin.html", context)
