"""Health check and the JSON error pages for API paths."""
from django.db import connection
from django.http import JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import error_body


class HealthView(APIView):
    """Liveness and database readiness, for load balancers and `make run`'s start-up message."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses=inline_serializer("Health", {"status": serializers.CharField(), "database": serializers.CharField()})
    )
    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response({"status": "ok", "database": connection.vendor})


def not_found(request, exception=None):
    if request.path.startswith(("/api/", "/hooks/", "/passkit/")):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def server_error(request):
    """Never a stack trace or an HTML page to an API client: the error shape, and the log has details."""
    return JsonResponse(error_body("server_error", "Something went wrong on our side; retry later."), status=500)
