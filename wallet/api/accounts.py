"""Customer API: accounts (register, log in, tokens, password, profile). Privacy is in wallet/api/privacy.py.

Views parse input with strict serializers, call `wallet.services.accounts` and shape the answer.
Registering, logging in and refreshing are public; everything else needs a customer's access token.
Endpoints that check a password are throttled like logging in.
"""
from dataclasses import asdict
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictSerializer
from core.money import validate_time_zone
from core.throttling import AccountThrottle, ScopedCounterThrottle
from wallet.api.permissions import IsCustomer, current_customer
from wallet.services import accounts

ACCOUNT_TAGS = ["accounts"]
PASSWORD_MAX_LENGTH = 1024  # long passphrases welcome; megabyte bodies hashed with Argon2 are not


# --- fields and serializers -----------------------------------------------------------------------


def _django_validator(function):
    """Run a Django validator or normaliser and report its message as a DRF field error."""

    def validate(value):
        try:
            result = function(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
        return value if result is None else result

    return validate


class PhoneField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=32, help_text="E.164, e.g. +14155550123", **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return _django_validator(accounts.normalize_phone)(value) if value else value


class CoordinateField(serializers.DecimalField):
    """Degrees; more than six decimals (about 11 cm) are rounded rather than refused."""

    def __init__(self, limit: int, **kwargs):
        super().__init__(
            max_digits=9, decimal_places=6, min_value=Decimal(-limit), max_value=Decimal(limit),
            rounding=ROUND_HALF_UP, coerce_to_string=False, allow_null=True, **kwargs,
        )
        self.limit = limit

    def validate_precision(self, value):
        if abs(value) <= self.limit:
            value = value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        return super().validate_precision(value)


def _password_field(**kwargs):
    return serializers.CharField(
        write_only=True, max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, style={"input_type": "password"},
        **kwargs,
    )


class ProfileSerializer(StrictSerializer):
    """The customer's profile. Communication settings are a separate resource."""

    id = serializers.IntegerField(read_only=True, help_text="Customer id")
    email = serializers.EmailField(allow_blank=True, max_length=254, help_text="Empty if none")
    phone = PhoneField(allow_blank=True)
    first_name = serializers.CharField(allow_blank=True, max_length=150)
    time_zone = serializers.CharField(
        max_length=64, validators=[_django_validator(validate_time_zone)], help_text="IANA time zone, e.g. Europe/Paris"
    )
    locale = serializers.CharField(
        max_length=15, validators=[_django_validator(accounts.validate_locale)],
        help_text="Language tag, e.g. en or pt-BR",
    )
    home_latitude = CoordinateField(90)
    home_longitude = CoordinateField(180)
    birth_month = serializers.IntegerField(min_value=1, max_value=12, allow_null=True,
                                           help_text="With birth_day, for birthday offers; no year is kept")
    birth_day = serializers.IntegerField(min_value=1, max_value=31, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)


class RegisterRequestSerializer(StrictSerializer):
    """A new account: an email address, a phone number or both, and a password."""

    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    phone = PhoneField(required=False, allow_blank=True)
    password = _password_field(help_text="Checked by the password validators")
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    time_zone = serializers.CharField(
        required=False, max_length=64, default="UTC", validators=[_django_validator(validate_time_zone)],
        help_text="IANA time zone, e.g. Europe/Paris (default UTC)",
    )
    locale = serializers.CharField(
        required=False, max_length=15, default="en", validators=[_django_validator(accounts.validate_locale)],
    )

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("phone"):
            problem = ["Give an email address, a phone number or both."]
            raise serializers.ValidationError({"email": problem, "phone": problem})
        return attrs


class TokenPairSerializer(serializers.Serializer):
    """Send the access token as `Authorization: Bearer <access>`."""

    access = serializers.CharField(help_text="Short-lived bearer token for the Authorization header")
    refresh = serializers.CharField(help_text="Long-lived; exchange at auth/token/refresh/, works once")


class RegisterResponseSerializer(serializers.Serializer):
    """The new account's profile and a token pair: the app is logged in at once."""

    profile = ProfileSerializer()
    tokens = TokenPairSerializer()


class LoginRequestSerializer(StrictSerializer):
    """Credentials: the email address or phone number of the account and its password."""

    login = serializers.CharField(max_length=254, help_text="Email address or phone number (E.164)")
    password = _password_field()


class RefreshRequestSerializer(StrictSerializer):
    """A refresh token from logging in, registering or an earlier refresh."""

    refresh = serializers.CharField(max_length=4096)


class PasswordChangeRequestSerializer(StrictSerializer):
    """The current password, to confirm, and the new one."""

    current_password = _password_field()
    new_password = _password_field(help_text="Checked by the password validators")


class PasswordConfirmationSerializer(StrictSerializer):
    """The account's password, to confirm an action that cannot be undone."""

    password = _password_field(help_text="The account's current password, to confirm")


def valid_input(serializer_class, request, *, partial: bool = False) -> dict:
    body = serializer_class(data=request.data, partial=partial)
    body.is_valid(raise_exception=True)
    return body.validated_data


# --- accounts -------------------------------------------------------------------------------------


class PublicAuthView(APIView):
    """No authentication: these endpoints hand out tokens. 401s still say how to authenticate."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == status.HTTP_401_UNAUTHORIZED and not response.has_header("WWW-Authenticate"):
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


class RegisterView(PublicAuthView):
    throttle_classes = [ScopedCounterThrottle]
    throttle_scope = "register"

    @extend_schema(
        operation_id="auth_register",
        summary="Create a customer account",
        description="Give an email address, a phone number (E.164) or both, and a password. Answers with the "
        "new profile and a token pair, so the app is logged in at once. An email (in any letter case) or "
        "phone already in use, a weak password or an unknown field is a 400 and creates nothing. "
        "Throttled per client (scope `register`).",
        tags=ACCOUNT_TAGS,
        request=RegisterRequestSerializer,
        responses={201: RegisterResponseSerializer},
    )
    def post(self, request):
        data = valid_input(RegisterRequestSerializer, request)
        customer = accounts.register_customer(accounts.Registration(**data))
        tokens = accounts.issue_token_pair(customer.user)
        body = {"profile": ProfileSerializer(accounts.get_profile(customer)).data, "tokens": asdict(tokens)}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenObtainView(PublicAuthView):
    throttle_classes = [ScopedCounterThrottle, AccountThrottle]
    throttle_scope = "login"
    account_throttle_scope = "login_account"

    @extend_schema(
        operation_id="auth_token",
        summary="Log in",
        description="Exchange an email address or phone number and the password for a token pair. Wrong "
        "credentials are a 401 with the same message whether or not the account exists; an erased or "
        "deactivated account cannot log in. Throttled per client (scope `login`) and per account tried, "
        "from any address (scope `login_account`): too many attempts are a 429 with Retry-After.",
        tags=ACCOUNT_TAGS,
        request=LoginRequestSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        data = valid_input(LoginRequestSerializer, request)
        return Response(asdict(accounts.log_in(data["login"], data["password"])))

    def throttle_account(self, request) -> str | None:
        """The account a login attempt is about, spelled the way `log_in` finds it, so `ADA@example.com`
        and `+1 415 555 0123` count against the same account as their usual spelling."""
        login = request.data.get("login") if hasattr(request.data, "get") else None
        if not isinstance(login, str) or not login.strip():
            return None
        login = login.strip()
        if "@" in login:
            return login.lower()
        try:
            return accounts.normalize_phone(login)
        except DjangoValidationError:
            return login


class TokenRefreshView(PublicAuthView):
    @extend_schema(
        operation_id="auth_token_refresh",
        summary="Refresh the token pair",
        description="Exchange a refresh token for a new access and refresh token. Each refresh token works "
        "once: using it again, or after logging out or changing the password, is a 401.",
        tags=ACCOUNT_TAGS,
        request=RefreshRequestSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        data = valid_input(RefreshRequestSerializer, request)
        return Response(asdict(accounts.rotate_refresh_token(data["refresh"])))


class LogoutView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="auth_logout",
        summary="Log out",
        description="Revoke one of my refresh tokens (this device's session). The access token expires on its own.",
        tags=ACCOUNT_TAGS,
        request=RefreshRequestSerializer,
        responses={204: OpenApiResponse(description="Logged out")},
    )
    def post(self, request):
        data = valid_input(RefreshRequestSerializer, request)
        accounts.log_out(request.user, data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    permission_classes = [IsCustomer]
    throttle_classes = [ScopedCounterThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="auth_password_change",
        summary="Change my password",
        description="Needs the current password. Afterwards every refresh token of the account is revoked, "
        "so all devices log in again. A wrong current password or a weak new one is a 400 and changes nothing.",
        tags=ACCOUNT_TAGS,
        request=PasswordChangeRequestSerializer,
        responses={204: OpenApiResponse(description="Password changed; all sessions ended")},
    )
    def post(self, request):
        data = valid_input(PasswordChangeRequestSerializer, request)
        accounts.change_password(
            request.user, current_password=data["current_password"], new_password=data["new_password"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="me_retrieve",
        summary="My profile",
        tags=ACCOUNT_TAGS,
        responses={200: ProfileSerializer},
    )
    def get(self, request):
        return Response(ProfileSerializer(accounts.get_profile(current_customer(request))).data)

    @extend_schema(
        operation_id="me_update",
        summary="Update my profile",
        description="Change any of email, phone, first name, time zone, locale, home location and birthday "
        "(month and day); all or "
        "nothing. An invalid time zone, a coordinate out of range, an email or phone someone else uses, "
        "removing both email and phone, or an unknown or read-only field is a 400 and writes nothing.",
        tags=ACCOUNT_TAGS,
        request=ProfileSerializer,
        responses={200: ProfileSerializer},
    )
    def patch(self, request):
        data = valid_input(ProfileSerializer, request, partial=True)
        profile = accounts.update_profile(current_customer(request), data)
        return Response(ProfileSerializer(profile).data)

urlpatterns = [
    path("auth/register/", RegisterView.as_view(), name="auth-register"),
    path("auth/token/", TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("auth/password/", PasswordChangeView.as_view(), name="auth-password"),
    path("me/", ProfileView.as_view(), name="me"),
]
