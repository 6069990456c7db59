"""Customer API: what the wallet app shows at the counter.

- the rotating pass token (JSON) and its QR (PNG, SVG): never cached past the current period, so a
  stale QR is never shown from a cache;
- the static card number as Code 128 (PNG, SVG) and a coupon's code as a QR: stable images with a
  strong ETag, cached privately for a day, answering 304 to a matching If-None-Match.

Every card and coupon is looked up through the requesting customer: another customer's is a 404.
"""
import hashlib
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
from wallet.passes import images, tokens

TAGS = ["passes"]
STABLE_CACHE_CONTROL = "private, max-age=86400"
PNG = "image/png"
SVG = "image/svg+xml"


class PassTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Signed, time-stepped token to show as a QR; base64url, ~104 chars")
    expires_at = serializers.DateTimeField(help_text="When the next token replaces this one; fetch again then")
    period_seconds = serializers.IntegerField(help_text="How often the token changes")


NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such card (or coupon) in your wallet")


def _binary(media_type: str, description: str) -> dict:
    return {(200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description), 404: NOT_FOUND}


def _rotating(card, body: bytes, content_type: str, now: float) -> HttpResponse:
    """A rotating image may be cached at most until its period ends; no-store when under a second is left."""
    period = card.program.token_period_seconds
    left = math.floor((tokens.time_step(now, period) + 1) * period - now)
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = f"private, max-age={left}" if left >= 1 else "no-store"
    response["Expires"] = tokens.expires_at(card, now).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return response


def _stable(request, body: bytes, content_type: str) -> HttpResponse:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    matches = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]
    if etag in matches or "*" in matches:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = STABLE_CACHE_CONTROL
    patch_vary_headers(response, ["Authorization"])
    return response


class PassTokenView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="cards_pass_token", tags=TAGS, summary="The card's current rotating pass token",
        description="Show it as a QR; it changes every `period_seconds`. Answers `Cache-Control: no-store`.",
        responses={200: PassTokenSerializer, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        card = owned_card(request, pk)
        now = datetime.now(UTC).timestamp()
        data = {
            "token": tokens.issue_token(card, now),
            "expires_at": tokens.expires_at(card, now),
            "period_seconds": card.program.token_period_seconds,
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
    media_type = PNG

    def render(self, token: str) -> bytes:
        raise NotImplementedError

    def get(self, request, pk: int):
        card = owned_card(request, pk)
        now = datetime.now(UTC).timestamp()
        return _rotating(card, self.render(tokens.issue_token(card, now)), self.media_type, now)


class PassQRPngView(_RotatingQRView):
    media_type = PNG

    def render(self, token):
        return images.qr_png(token)

    @extend_schema(
        operation_id="cards_pass_qr_png", tags=TAGS, summary="QR of the rotating pass token (PNG)",
        description="Cacheable at most until the token's period ends (`max-age` = seconds left).",
        responses=_binary(PNG, "PNG, 10 px per module, 4-module quiet zone"),
    )
    def get(self, request, pk: int):
        return super().get(request, pk)


class PassQRSvgView(_RotatingQRView):
    media_type = SVG

    def render(self, token):
        return images.qr_svg(token)

    @extend_schema(
        operation_id="cards_pass_qr_svg", tags=TAGS, summary="QR of the rotating pass token (SVG)",
        description="Cacheable at most until the token's period ends (`max-age` = seconds left).",
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
        return _stable(request, images.code128_png(owned_card(request, pk).number), PNG)


class CardBarcodeSvgView(_ImageView):

    @extend_schema(
        operation_id="cards_barcode_svg", tags=TAGS, summary="Code 128 of the static card number (SVG)",
        description="Strong ETag; answers 304 to a matching If-None-Match.",
        responses=_binary(SVG, "Code 128 in module units"),
    )
    def get(self, request, pk: int):
        return _stable(request, images.code128_svg(owned_card(request, pk).number), SVG)


class CouponQRPngView(_ImageView):

    @extend_schema(
        operation_id="coupons_qr_png", tags=TAGS, summary="QR of the coupon code (PNG)",
        description="Strong ETag; answers 304 to a matching If-None-Match.",
        responses=_binary(PNG, "PNG, 10 px per module, 4-module quiet zone"),
    )
    def get(self, request, pk: int):
        return _stable(request, images.qr_png(owned_coupon(request, pk).coupon_code), PNG)


urlpatterns = [
    path("cards/<int:pk>/pass-token/", PassTokenView.as_view(), name="card-pass-token"),
    path("cards/<int:pk>/qr.png", PassQRPngView.as_view(), name="card-pass-qr-png"),
    path("cards/<int:pk>/qr.svg", PassQRSvgView.as_view(), name="card-pass-qr-svg"),
    path("cards/<int:pk>/barcode.png", CardBarcodePngView.as_view(), name="card-barcode-png"),
    path("cards/<int:pk>/barcode.svg", CardBarcodeSvgView.as_view(), name="card-barcode-svg"),
    path("coupons/<int:pk>/qr.png", CouponQRPngView.as_view(), name="coupon-qr-png"),
]
