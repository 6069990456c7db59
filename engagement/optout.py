"""One-click opt-out links: a signed token naming one customer, one merchant and one channel.

Every email and SMS carries one. The token is signed with the site's key (django.core.signing, its own
salt) and does not expire: an old email's link must still work. It holds ids only, no contact data.
"""
from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "tessera.engagement.opt-out"


def opt_out_token(customer_id: int, merchant_id: int, channel: str) -> str:
    return signing.dumps([customer_id, merchant_id, channel], salt=SALT, compress=True)


def read_opt_out_token(token: str) -> tuple[int, int, str] | None:
    """(customer_id, merchant_id, channel), or None for a token that was not signed here."""
    try:
        customer_id, merchant_id, channel = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return int(customer_id), int(merchant_id), str(channel)


def opt_out_url(customer_id: int, merchant_id: int, channel: str) -> str:
    """The absolute link (TESSERA_PUBLIC_URL) of the opt-out page for this customer, merchant and channel."""
    path = reverse("engagement-opt-out", kwargs={"token": opt_out_token(customer_id, merchant_id, channel)})
    return settings.TESSERA_PUBLIC_URL + path
