"""Customer accounts: registering, logging in, tokens, passwords and the profile.

Customers log in with their email address or phone number (E.164); the username is generated and
never shown. Tokens are simplejwt refresh/access pairs; every refresh token is recorded as
outstanding, so revoking a user's sessions is blacklisting their outstanding refresh tokens.
Access tokens are stateless and live until they expire (SIMPLE_JWT ACCESS_TOKEN_LIFETIME).
"""
import calendar
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from core.errors import ValidationFailed
from wallet.errors import InvalidCredentials, InvalidRefreshToken, WrongPassword
from wallet.events import emit_event
from wallet.models import Customer
from wallet.services.customers import create_customer

User = get_user_model()

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


@dataclass(frozen=True)
class Registration:
    password: str
    email: str = ""
    phone: str = ""
    first_name: str = ""
    time_zone: str = "UTC"
    locale: str = "en"


@dataclass(frozen=True)
class Profile:
    """What a customer sees and edits as their profile (communication settings live elsewhere)."""

    id: int
    email: str
    phone: str
    first_name: str
    time_zone: str
    locale: str
    home_latitude: Decimal | None
    home_longitude: Decimal | None
    birth_month: int | None
    birth_day: int | None
    created_at: dt.datetime


USER_PROFILE_FIELDS = ("email", "phone", "first_name")
CUSTOMER_PROFILE_FIELDS = ("time_zone", "locale", "home_latitude", "home_longitude", "birth_month", "birth_day")
PROFILE_FIELDS = USER_PROFILE_FIELDS + CUSTOMER_PROFILE_FIELDS


# --- input normalisation, shared with the API serializers -------------------------------------


def normalize_phone(value: str) -> str:
    """`+1 (415) 555-0123` -> `+14155550123`; raises ValidationError unless the result is E.164."""
    phone = _PHONE_SEPARATORS.sub("", value or "")
    if not _E164.match(phone):
        raise DjangoValidationError("Enter a phone number in E.164 format, e.g. +14155550123.")
    return phone


def normalize_email(value: str) -> str:
    email = User.objects.normalize_email((value or "").strip())
    validate_email(email)
    return email


def validate_locale(value: str) -> None:
    if not _LOCALE.match(value or "") or len(value) > 15:
        raise DjangoValidationError("Enter a language tag such as en, fr or pt-BR.")


# --- registration --------------------------------------------------------------------------------


def register_customer(registration: Registration) -> Customer:
    """Create the user and their customer and wallet. Refuses, writing nothing, a missing login,
    an email or phone already in use (email case-insensitively) and a password the validators reject."""
    email, phone = _normalized_logins(registration.email, registration.phone)
    if not email and not phone:
        problem = ["Give an email address, a phone number or both."]
        raise ValidationFailed(problem[0], fields={"email": problem, "phone": problem})
    _require_unused(email=email, phone=phone)
    _require_valid_locale(registration.locale)
    user = User(username=f"c_{uuid.uuid4().hex}", email=email, phone=phone, first_name=registration.first_name)
    _validate_password(registration.password, user, field="password")
    user.set_password(registration.password)
    try:
        with transaction.atomic():
            user.full_clean(exclude=["password"], validate_constraints=False)
            user.save()
            return create_customer(user, time_zone=registration.time_zone, locale=registration.locale)
    except DjangoValidationError as error:
        raise _as_validation_failed(error) from error
    except IntegrityError:
        # Lost a race with a concurrent registration of the same login: report it like the check above.
        _require_unused(email=email, phone=phone)
        raise


# --- logging in and tokens ----------------------------------------------------------------------


def log_in(login: str, password: str) -> TokenPair:
    """Check a customer's email-or-phone and password and issue a token pair."""
    user = _find_user_by_login(login)
    if user is None:
        User().set_password(password)  # spend the hashing time anyway: timing says nothing either
        raise InvalidCredentials()
    if not user.check_password(password) or not _may_log_in(user):
        raise InvalidCredentials()
    update_last_login(None, user)
    return issue_token_pair(user)


def issue_token_pair(user) -> TokenPair:
    refresh = RefreshToken.for_user(user)  # recorded as outstanding, so it can be revoked
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def rotate_refresh_token(raw_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; the old one is blacklisted, so it works once.

    The user row is locked first, here and in `revoke_refresh_tokens`, so a rotation racing a
    password change or an erasure cannot mint a token the revocation misses, and two concurrent
    rotations of the same token cannot both succeed.
    """
    token = _verified_refresh_token(raw_token)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=token[jwt_settings.USER_ID_CLAIM]).first()
        if user is None or not _may_log_in(user):
            raise InvalidRefreshToken()
        outstanding = OutstandingToken.objects.filter(jti=token[jwt_settings.JTI_CLAIM], user=user).first()
        if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
            raise InvalidRefreshToken()
        BlacklistedToken.objects.create(token=outstanding)
        return issue_token_pair(user)


def log_out(user, raw_token: str) -> None:
    """Blacklist one of the user's own refresh tokens. Logging out twice is not an error."""
    problem = "Not a valid refresh token of this account."
    invalid = ValidationFailed(problem, fields={"refresh": [problem]})
    try:
        # Signature and expiry only: an already blacklisted token is fine here.
        payload = token_backend.decode(raw_token, verify=True)
    except TokenBackendError as error:
        raise invalid from error
    owner = str(payload.get(jwt_settings.USER_ID_CLAIM))
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) != "refresh" or owner != str(user.pk):
        raise invalid
    with transaction.atomic():
        outstanding = OutstandingToken.objects.filter(jti=payload.get(jwt_settings.JTI_CLAIM), user=user).first()
        if outstanding is None:
            raise invalid
        BlacklistedToken.objects.get_or_create(token=outstanding)


def revoke_refresh_tokens(user) -> int:
    """Blacklist every unexpired refresh token of the user (all their sessions). Returns how many."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        live = OutstandingToken.objects.filter(
            user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
        )
        BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live], ignore_conflicts=True)
        return len(live)


# --- passwords ------------------------------------------------------------------------------------


def verify_password(user, password: str, *, field: str = "password") -> None:
    if not user.has_usable_password() or not user.check_password(password or ""):
        raise WrongPassword(fields={field: ["The password is not correct."]})


def change_password(user, *, current_password: str, new_password: str) -> None:
    """Set a new password and end every session: all the user's refresh tokens are blacklisted."""
    verify_password(user, current_password, field="current_password")
    _validate_password(new_password, user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoke_refresh_tokens(user)


# --- the profile ----------------------------------------------------------------------------------


def get_profile(customer: Customer) -> Profile:
    user = customer.user
    return Profile(
        id=customer.pk,
        email=user.email,
        phone=user.phone,
        first_name=user.first_name,
        time_zone=customer.time_zone,
        locale=customer.locale,
        home_latitude=customer.home_latitude,
        home_longitude=customer.home_longitude,
        birth_month=customer.birth_month,
        birth_day=customer.birth_day,
        created_at=customer.created_at,
    )


def update_profile(customer: Customer, changes: dict) -> Profile:
    """Apply `changes` (a subset of PROFILE_FIELDS) all together or not at all.

    Refused, writing nothing: unknown fields, an invalid time zone or locale, a coordinate out of
    range or given without its partner, an email or phone used by someone else, and removing the
    last way to log in.
    """
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        raise ValidationFailed(fields={name: ["Unknown or read-only field."] for name in unknown})
    changes = dict(changes)
    email, phone = _normalized_logins(changes.get("email", ""), changes.get("phone", ""))
    if "email" in changes:
        changes["email"] = email
    if "phone" in changes:
        changes["phone"] = phone
    with transaction.atomic():
        customer = Customer.objects.select_for_update().select_related("user").get(pk=customer.pk)
        user = customer.user
        changed = [name for name in PROFILE_FIELDS if name in changes and _current(customer, name) != changes[name]]
        for name in changed:
            setattr(user if name in USER_PROFILE_FIELDS else customer, name, changes[name])
        _check_profile(customer, user, changed)
        if not changed:
            return get_profile(customer)
        user_fields = [name for name in changed if name in USER_PROFILE_FIELDS]
        customer_fields = [name for name in changed if name in CUSTOMER_PROFILE_FIELDS]
        if user_fields:
            user.save(update_fields=user_fields)
        if customer_fields:
            customer.save(update_fields=customer_fields)
        emit_event(
            "wallet.customer.updated",
            merchant_id=None,
            customer_id=customer.pk,
            # Which fields, never their values: the outbox carries no personal data.
            payload={"customer_id": customer.pk, "changed": sorted(changed)},
            occurred_at=timezone.now(),
        )
    return get_profile(customer)


# --- helpers --------------------------------------------------------------------------------------


def _check_birthday(month: int | None, day: int | None) -> None:
    """Month and day together or neither, and a day that month has (29 February is a birthday)."""
    if (month is None) != (day is None):
        missing = "birth_day" if day is None else "birth_month"
        raise ValidationFailed(fields={missing: ["Give both birth_month and birth_day, or neither."]})
    if month is not None and not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(2000, month)[1]):
        raise ValidationFailed(fields={"birth_day": ["No such day in that month."]})


def _current(customer: Customer, name: str):
    return getattr(customer.user if name in USER_PROFILE_FIELDS else customer, name)


def _check_profile(customer: Customer, user, changed: list[str]) -> None:
    if not user.email and not user.phone:
        problem = ["Keep an email address or a phone number to log in with."]
        raise ValidationFailed(problem[0], fields={"email": problem, "phone": problem})
    if (customer.home_latitude is None) != (customer.home_longitude is None):
        missing = "home_longitude" if customer.home_longitude is None else "home_latitude"
        raise ValidationFailed(fields={missing: ["Give both home_latitude and home_longitude, or neither."]})
    _check_birthday(customer.birth_month, customer.birth_day)
    _require_unused(
        email=user.email if "email" in changed else "",
        phone=user.phone if "phone" in changed else "",
        exclude_user_id=user.pk,
    )
    if "locale" in changed:
        _require_valid_locale(customer.locale)
    try:
        # Field validators and the database's check constraints (coordinate ranges), in Python first.
        customer.full_clean(exclude=["user"])
        user.full_clean(exclude=["password", "username"], validate_constraints=False)
    except DjangoValidationError as error:
        raise _as_validation_failed(error) from error


def _require_unused(*, email: str, phone: str, exclude_user_id: int | None = None) -> None:
    others = User.objects.exclude(pk=exclude_user_id) if exclude_user_id else User.objects.all()
    fields = {}
    if email and others.filter(email__iexact=email).exists():
        fields["email"] = ["An account with this email address already exists."]
    if phone and others.filter(phone=phone).exists():
        fields["phone"] = ["An account with this phone number already exists."]
    if fields:
        raise ValidationFailed(next(iter(fields.values()))[0], fields=fields)


def _normalized_logins(email: str, phone: str) -> tuple[str, str]:
    fields = {}
    try:
        email = normalize_email(email) if email else ""
    except DjangoValidationError as error:
        fields["email"] = error.messages
    try:
        phone = normalize_phone(phone) if phone else ""
    except DjangoValidationError as error:
        fields["phone"] = error.messages
    if fields:
        raise ValidationFailed(fields=fields)
    return email, phone


def _require_valid_locale(locale: str) -> None:
    try:
        validate_locale(locale)
    except DjangoValidationError as error:
        raise ValidationFailed(fields={"locale": error.messages}) from error


def _validate_password(password: str, user, *, field: str) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise ValidationFailed(" ".join(error.messages), fields={field: error.messages}) from error


def _find_user_by_login(login: str):
    login = (login or "").strip()
    if "@" in login:
        return User.objects.filter(email__iexact=login).exclude(email="").order_by("pk").first()
    try:
        phone = normalize_phone(login)
    except DjangoValidationError:
        return None
    return User.objects.filter(phone=phone).first()


def _may_log_in(user) -> bool:
    customer = Customer.objects.filter(user=user).only("erased_at").first()
    return user.is_active and customer is not None and customer.erased_at is None


def _verified_refresh_token(raw_token: str) -> RefreshToken:
    try:
        token = RefreshToken(raw_token)  # signature, expiry, type and the blacklist
    except TokenError as error:
        raise InvalidRefreshToken() from error
    if jwt_settings.JTI_CLAIM not in token.payload or jwt_settings.USER_ID_CLAIM not in token.payload:
        raise InvalidRefreshToken()
    return token


def _as_validation_failed(error: DjangoValidationError) -> ValidationFailed:
    fields = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
    return ValidationFailed(fields=fields)
