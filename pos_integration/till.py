"""The cashier's web till: one static page whose script talks to the counter API with the device key.

The page holds no data and no secret: the device key is pasted in the browser and kept in its
storage, the cashier's PIN only in memory. The headers keep it that way: a strict CSP (our own
scripts, styles and API only, so nothing is loaded from the internet and an injected script cannot
send the key elsewhere), no referrer, no caching, and the camera allowed for this origin only.
"""
from django.shortcuts import render
from django.views.decorators.http import require_safe

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()",
    "X-Frame-Options": "DENY",
}


@require_safe
def till_page(request):
    """The page itself; the API addresses come from the URL conf so the script never guesses them."""
    response = render(request, "pos_integration/till.html")
    for name, value in SECURITY_HEADERS.items():
        response[name] = value
    return response
