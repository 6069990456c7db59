"""Admin forms that change points. Each carries a one-time key made when the form is shown, so a double
click or a resubmitted page applies the change once (the services are idempotent on it)."""
import uuid

from django import forms

from merchants.models import Store
from wallet.services.validation import MAX_POINTS_DELTA


class OneTimeKeyForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", f"admin-{uuid.uuid4()}")


class AdjustPointsForm(OneTimeKeyForm):
    delta = forms.IntegerField(
        label="Points", min_value=-MAX_POINTS_DELTA, max_value=MAX_POINTS_DELTA,
        help_text="Positive adds points (they expire like earned ones); negative removes them.",
    )
    reason = forms.CharField(
        max_length=255, help_text="Required. Shown in the ledger and to whoever audits it, e.g. a ticket number."
    )
    store = forms.ModelChoiceField(queryset=Store.objects.none(), required=False,
                                   help_text="Where it happened, if at a store.")

    def __init__(self, *args, card=None, **kwargs):
        super().__init__(*args, **kwargs)
        if card is not None:
            self.fields["store"].queryset = Store.objects.filter(merchant_id=card.merchant_id)

    def clean_delta(self):
        delta = self.cleaned_data["delta"]
        if delta == 0:
            raise forms.ValidationError("Enter a number of points other than zero.")
        return delta

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason


class ReverseEntryForm(OneTimeKeyForm):
    reason = forms.CharField(max_length=255, help_text="Required: why this entry is undone.")

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason
