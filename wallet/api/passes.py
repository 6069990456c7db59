"""Customer API: what the wallet app shows at the counter.

- the rotating pass token (JSON), with signed URLs of its QR that need no Authorization header (for
  an <img src>; served outside Django, see wallet/passes/image_urls.py);
- the token's QR (PNG, SVG): never cached past the current period, so a stale QR is never shown from
  a cache; a strong ETag, so a client that asks again within the period gets a 304;
- the static card number as Code 128 (PNG, SVG) and a coupon's code as a QR: stable images with a
  strong ETag, cached privately for a day, answering 304 to a matching If-None-Match.

Every card and coupon is looked up through the requesting customer: another customer's is a 404.
Images come from the per-process cache in wallet.passes.images (each is a pure function of its value).
"""
import math
from datetime import UTC, datetime

from django.http import HttpResponse
from django.urls import path
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer
from wallet.api.cards import owned_card
from wallet.api.coupons import owned_coupon
from wallet.api.permissions import IsCustomer
from wallet.passes import image_urls, images, tokens

TAGS = ["passes"]
STABLE_CACHE_CONTROL = "private, max-age=86400"
PNG = images.PNG
SVG = images.SVG
IMAGE_URL_HELP = (
    "Path of the token's QR as {}, to fetch without an Authorization header (e.g. an <img src>) until "
    "the token stops being accepted (end of its period plus the drift window), then 404. The token is "
    "encrypted in the URL, so it does not show in access logs."
)


class PassTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Signed, time-stepped token to show as a QR; base64url, 99-110 chars")
    expires_at = serializers.DateTimeField(help_text="When the next token replaces this one; fetch again then")
    period_seconds = serializers.IntegerField(help_text="How often the token changes")
    qr_png_url = serializers.CharField(help_text=IMAGE_URL_HELP.format("PNG (10 px per module)"))
    qr_svg_url = serializers.CharField(help_text=IMAGE_URL_HELP.format("SVG (in module units)"))


NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such card (or coupon) in your wallet")


def _binary(media_type: str, description: str) -> dict:
    return {(200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description), 404: NOT_FOUND}


def _conditional(request, image: images.RenderedImage, cache_control: str) -> HttpResponse:
    """The image with its strong ETag, or a 304 when If-None-Match names it."""
    if image_urls.if_none_match(request.headers.get("If-None-Match", ""), image.etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(image.body, content_type=image.media_type)
    response["ETag"] = image.etag
    response["Cache-Control"] = cache_control
    patch_vary_headers(response, ["Authorization"])
    return response


def _rotating(request, card, image: images.RenderedImage, now: float) -> HttpResponse:
    """A rotating image may be cached at most until its period ends; no-store when under a second is left."""
    period = card.program.token_period_seconds
    left = math.floor((tokens.time_step(now, period) + 1) * period - now)
    response = _conditional(request, image, f"private, max-age={left}" if left >= 1 else "no-store")
    response["Expires"] = tokens.expires_at(card, now).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return response


def _stable(request, image: images.RenderedImage) -> HttpResponse:
    return _conditional(request, image, STABLE_CACHE_CONTROL)


class PassTokenView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="cards_pass_token", tags=TAGS, summary="The card's current rotating pass token",
        description=(
            "Show it as a QR; it changes every `period_seconds`. Answers `Cache-Control: no-store`. "
            "`qr_png_url` and `qr_svg_url` are its QR as signed, short-lived paths (`/i/...`) that an "
            "`<img src>` can load without the Authorization header; they answer 404 once the token "
            "is no longer accepted, and 304 to a matching If-None-Match."
        ),
        responses={200: PassTokenSerializer, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        card = owned_card(request, pk)
        now = datetime.now(UTC).timestamp()
        token = tokens.issue_token(card, now)
        data = {
            "token": token,
            "expires_at": tokens.expires_at(card, now),
            "period_seconds": card.program.token_period_seconds,
            **image_urls.qr_urls(card, token, now),
        }
        response = Response(PassTokenSerializer(data).data)
        response["Cache-Control"] = "no-store"
        return response


class _ImageView(APIView):
    """Images answer whatever the client accepts (an <img> may send `Accept: image/png` only);
    errors stay in the JSON error shape instead of a 406."""

    permission_classes = [IsCustomer]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class _RotatingQRView(_ImageView):
    kind = ""  # a key of images.RENDERERS

    def get(self, request, pk: int):
        card = owned_card(request, pk)
        now = datetime.now(UTC).timestamp()
        return _rotating(request, card, images.cached(self.kind, tokens.issue_token(card, now)), now)


ROTATING_DESCRIPTION = (
    "Cacheable at most until the token's period ends (`max-age` = seconds left). Strong ETag; answers "
    "304 to a matching If-None-Match within the period."
)


class PassQRPngView(_RotatingQRView):
    kind = "qr_png"

    @extend_schema(
        operation_id="cards_pass_qr_png", tags=TAGS, summary="QR of the rotating pass token (PNG)",
        description=ROTATING_DESCRIPTION,
        responses=_binary(PNG, "PNG, 10 px per module, 4-module quiet zone"),
    )
    def get(self, request, pk: int):
        return super().get(request, pk)


class PassQRSvgView(_RotatingQRView):
    kind = "qr_svg"

    @extend_schema(
        operation_id="cards_pass_qr_svg", tags=TAGS, summary="QR of the rotating pass token (SVG)",
        description=ROTATING_DESCRIPTION,
        responses=_binary(SVG, "SVG in module units"),
    )
    def get(self, request, pk: int):
        return super().get(request, pk)


class CardBarcodePngView(_ImageView):

    @extend_schema(
        operation_id="cards_barcode_png", tags=TAGS, summary="Code 128 of the static card number (PNG)",
        description="Strong ETag; answers 304 to a matching If-None-Match.",
        responses=_binary(PNG, "Code 128 with the number printed under it"),
    )
    def get(self, request, pk: int):
        return _stable(request, images.cached("code128_png", owned_card(request, pk).number))


class CardBarcodeSvgView(_ImageView):

    @extend_schema(
        operation_id="cards_barcode_svg", tags=TAGS, summary="Code 128 of the static card number (SVG)",
        description="Strong ETag; answers 304 to a matching If-None-Match.",
        responses=_binary(SVG, "Code 128 in module units"),
    )
    def get(self, request, pk: int):
        return _stable(request, images.cached("code128_svg", owned_card(request, pk).number))


class CouponQRPngView(_ImageView):

    @extend_schema(
        operation_id="coupons_qr_png", tags=TAGS, summary="QR of the coupon code (PNG)",
        description="Strong ETag; answers 304 to a matching If-None-Match.",
        responses=_binary(PNG, "PNG, 10 px per module, 4-module quiet zone"),
    )
    def get(self, request, pk: int):
        return _stable(request, images.cached("qr_png", owned_coupon(request, pk).coupon_code))


urlpatterns = [
    path("cards/<int:pk>/pass-token/", PassTokenView.as_view(), name="card-pass-token"),
    path("cards/<int:pk>/qr.png", PassQRPngView.as_view(), name="card-pass-qr-png"),
    path("cards/<int:pk>/qr.svg", PassQRSvgView.as_view(), name="card-pass-qr-svg"),
    path("cards/<int:pk>/barcode.png", CardBarcodePngView.as_view(), name="card-barcode-png"),
    path("cards/<int:pk>/barcode.svg", CardBarcodeSvgView.as_view(), name="card-barcode-svg"),
    path("coupons/<int:pk>/qr.png", CouponQRPngView.as_view(), name="coupon-qr-png"),
]
