"""Building blocks every API module uses: strict input, pagination, the error schema."""
from rest_framework import serializers
from rest_framework.pagination import CursorPagination, PageNumberPagination


class StrictSerializerMixin:
    # Refuse unknown fields with a 400 instead of silently ignoring them: a typo in a client
    # (`ammount`) must not look like success, and server-owned fields (balance, merchant) cannot be
    # smuggled in. (A comment, not a docstring: drf-spectacular would show a docstring as the
    # description of every serializer built on this.)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in unknown})
        return super().to_internal_value(data)


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    pass


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class NewestFirstCursorPagination(CursorPagination):
    """Stable pages over append-only history: new entries never shift a page the client holds."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_points")
    message = serializers.CharField(help_text="Human-readable explanation")
    fields = serializers.DictField(
        child=serializers.JSONField(), help_text="Per-field problems, keyed by field name"
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
