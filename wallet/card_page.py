"""The card page for customers without the app: live rotating QR, balance, wallet buttons.

Anyone holding the link sees the pass, like holding the plastic card; the slug is unguessable and
the page shows no personal data beyond the first name. Plain Django views: it is a page, not API.
"""
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from wallet.models import Card
from wallet.passes import images, tokens
from wallet.passes.apple.pkpass import build_pkpass
from wallet.passes.google.credentials import CredentialsError
from wallet.passes.google.save_link import save_url


def _card(slug: str) -> Card:
    card = Card.objects.select_related("merchant", "program", "tier", "wallet__customer__user").filter(
        page_slug=slug
    ).first()
    if card is None:
        raise Http404("No such card page.")
    return card


def _status(card: Card) -> dict:
    now = timezone.now()
    expires = tokens.expires_at(card, now)
    return {
        "balance": card.balance,
        "tier": card.tier.name if card.tier else None,
        "is_active": card.is_active,
        "seconds_left": max(1, int((expires - now).total_seconds())),
        "period_seconds": card.program.token_period_seconds,
    }


@require_GET
def card_page(request, slug: str):
    card = _card(slug)
    response = render(
        request,
        "wallet/card_page.html",
        {
            "card": card,
            "status": _status(card),
            "first_name": card.wallet.customer.user.first_name,
            "barcode_svg": images.code128_svg(card.number).decode(),
        },
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the URL is the key: never leak it to another site
    return response


@require_GET
def card_page_qr(request, slug: str):
    """The current rotating token as a QR; never cached, a stale one would be refused at the counter."""
    card = _card(slug)
    if not card.is_active:
        raise Http404("This card is closed.")
    response = HttpResponse(images.cached("qr_svg", tokens.issue_token(card)).body, content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def card_page_status(request, slug: str):
    response = JsonResponse(_status(_card(slug)))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def card_page_google(request, slug: str):
    """Sign the Google save link when it is clicked (a link in an email may be opened much later)."""
    card = _card(slug)
    try:
        return HttpResponseRedirect(save_url(card))
    except CredentialsError:
        return HttpResponse("Google Wallet is not configured on this server.", status=503, content_type="text/plain")


@require_GET
def card_page_apple_pass(request, slug: str):
    """The signed .pkpass for "Add to Apple Wallet"; later updates come through the PassKit web service."""
    card = _card(slug)
    try:
        package = build_pkpass(card)
    except ImproperlyConfigured:
        return HttpResponse("Apple Wallet is not configured on this server.", status=503, content_type="text/plain")
    response = HttpResponse(package, content_type="application/vnd.apple.pkpass")
    response["Content-Disposition"] = f'attachment; filename="{card.merchant.slug}.pkpass"'
    response["Cache-Control"] = "no-store"
    return response
