"""The one-click opt-out page behind every email's and SMS's link (/e/o/<token>/).

GET only shows the button: mail scanners and link previews follow links, and must never opt anyone
out. POST (the button, or a mail client's RFC 8058 one-click POST of "List-Unsubscribe=One-Click")
opts out through the consent service, so the outbox records `wallet.consent.changed` and the CRM
hears of it; posting again changes nothing. The signed token is the only credential, so the view is
CSRF-exempt (a mail client has no cookie or form token to send) and the page names no customer.
"""
from dataclasses import dataclass

from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from engagement.models import MerchantEngagement
from engagement.optout import read_opt_out_token
from merchants.models import Merchant
from wallet.models import Customer
from wallet.services.preferences import CHANNELS, channel_consents, set_channel_consent

# How each channel reads in "you will no longer get ... from <merchant>".
CHANNEL_NOUNS = {
    "email": "emails",
    "sms": "text messages",
    "push": "push notifications",
    "wallet_pass": "wallet pass messages",
}


@dataclass(frozen=True)
class OptOutTarget:
    customer: Customer
    merchant: Merchant
    channel: str

    @property
    def sender_name(self) -> str:
        """The name the messages came from: the merchant's engagement sender name, else its name."""
        sender = MerchantEngagement.objects.filter(merchant=self.merchant).values_list("sender_name", flat=True)
        return next((name for name in sender if name), self.merchant.name)


def _target(token: str) -> OptOutTarget | None:
    read = read_opt_out_token(token)
    if read is None:
        return None
    customer_id, merchant_id, channel = read
    if channel not in CHANNELS:
        return None
    customer = Customer.objects.filter(pk=customer_id).first()
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if customer is None or merchant is None:
        return None
    return OptOutTarget(customer, merchant, channel)


def _page(request, template: str, context: dict, status: int = 200):
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the URL is the credential: never leak it to another site
    response["X-Robots-Tag"] = "noindex"
    return response


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def opt_out(request, token: str):
    target = _target(token)
    if target is None:
        return _page(request, "engagement/opt_out_invalid.html", {}, status=404)
    context = {"merchant_name": target.sender_name, "channel_noun": CHANNEL_NOUNS[target.channel]}
    if request.method == "POST":
        set_channel_consent(target.customer, target.merchant, {target.channel: False})
        return _page(request, "engagement/opt_out_done.html", context)
    opted_in = channel_consents(target.customer, target.merchant)[target.channel]
    return _page(request, "engagement/opt_out.html", {**context, "opted_in": opted_in})
