"""Error types and the one JSON error shape every API answers with.

Shape: {"error": {"code": "...", "message": "...", "fields": {...}}}. Services raise `TesseraError`
subclasses; the DRF exception handler turns them, and DRF's own errors, into that shape.
"""
from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class TesseraError(Exception):
    """A business error a caller can act on. `code` is stable; `message` is for humans."""

    code = "error"
    http_status = 400
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, fields: dict | None = None):
        self.message = message or self.default_message
        self.fields = fields or {}
        super().__init__(self.message)


class ValidationFailed(TesseraError):
    code = "validation_failed"
    http_status = 400
    default_message = "Some fields are invalid."


class NotFound(TesseraError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."


class Conflict(TesseraError):
    code = "conflict"
    http_status = 409
    default_message = "The request conflicts with the current state."


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _drf_fields(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return {}


def _flatten(value):
    if isinstance(value, list):
        return [str(item) if not isinstance(item, (dict, list)) else _flatten(item) for item in value]
    if isinstance(value, dict):
        return {key: _flatten(item) for key, item in value.items()}
    return [str(value)]


_DRF_CODES = {
    drf_exceptions.ValidationError: "validation_failed",
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
}


def api_exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: every error leaves the API in the one shape."""
    if isinstance(exc, TesseraError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((name for kind, name in _DRF_CODES.items() if isinstance(exc, kind)), "error")
    if isinstance(exc, drf_exceptions.ValidationError):
        message, fields = "Some fields are invalid.", _drf_fields(exc.detail)
        if isinstance(exc.detail, list):
            message = " ".join(str(item) for item in exc.detail) or message
    else:
        detail = getattr(exc, "detail", exc)
        if isinstance(detail, dict):  # e.g. simplejwt's {"detail": ..., "code": ..., "messages": [...]}
            detail = detail.get("detail", "")
        message, fields = str(detail), {}
    response.data = error_body(code, message, fields)
    return response
