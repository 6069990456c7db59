"""Acceptance: every route turns away every caller who has no business there, and writes nothing.

The routes come from Django's resolver, so a route added later cannot slip past: each must be classified in
ROUTES below, or `test_every_route_is_classified` fails. Each protected route is then tried, with every method
its view answers, as each wrong caller of its class: anonymous; BRAVO's customer on ALPHA's objects; BRAVO's
device (with BRAVO's cashier signed in) on ALPHA's cards and sales; BRAVO's owner signed in to the admin; a
customer's JWT at the counter; a device key on the customer API; another pass's ApplePass token. The answer
must be the designed denial (401, 403, 404 for another owner's object, or the admin's redirect to its login
page), never 2xx or 5xx, and no table gains, changes or loses a row.

Write requests carry a minimal body (`{}`, or ALPHA's ids where the caller is authenticated but foreign):
the denial must come before validation. One tenant world (tests/admin/tenant_world.py) serves the module.
"""
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from core.admin_base import MerchantScopedAdmin
from core.tenancy import scope_queryset
from crm_sync.connections import create_connection as create_crm_connection
from engagement.models import Campaign
from engagement.push_devices import register_push_device
from merchants.models import BillingPlan
from pos_integration.cashiers import set_pin
from pos_integration.models import PosDevice, WebhookDelivery
from pos_integration.services import register_device
from tests.admin.tenant_world import build_tenant
from tests.pos.helpers import PIN, as_cashier
from wallet.models import ExternalCard, LedgerEntry, Redemption
from wallet.passes.apple.pkpass import authentication_token
from wallet.passes.tokens import issue_token

# Route classes.
CUSTOMER = "customer API (JWT)"
CUSTOMER_ENTRY = "customer API sign-up and sign-in (public by design: it hands out the JWT)"
DIRECTORY = "customer API public directory"
POS = "POS API (device key)"
PASSKIT = "PassKit (ApplePass token)"
ADMIN = "admin (staff session)"
REPORTS = "admin reports and exports (staff session)"
WEBHOOK = "webhook (vendor signature)"
PUBLIC = "public by design"

# Every route, by its pattern as the resolver spells it. An entry ending in "*" covers a prefix: the admin site's
# own patterns (each ModelAdmin's, all behind admin_view) and the signed image URLs.
ROUTES = {
    "api/pos/v1/pass-keys/": POS,
    "api/pos/v1/device/": POS,
    "api/pos/v1/cashiers/check/": POS,
    "api/pos/v1/scan/": POS,
    "api/pos/v1/purchases/": POS,
    "api/pos/v1/redemptions/": POS,
    "api/pos/v1/refunds/": POS,
    "api/pos/v1/adjustments/": POS,
    "api/pos/v1/offline-batches/": POS,
    "admin/reports/reconciliation/": REPORTS,
    "admin/reports/reconciliation.csv": REPORTS,
    "admin/reports/liability/": REPORTS,
    "admin/reports/billing/": REPORTS,
    "admin/reports/billing/checkout/": REPORTS,
    "admin/reports/billing/portal/": REPORTS,
    "admin/*": ADMIN,
    "admin/login/": PUBLIC,
    "admin/logout/": PUBLIC,
    "admin/password-reset/*": PUBLIC,  # staff who forgot their password (merchants/password_reset.py)
    "api/schema/": PUBLIC,
    "api/docs/": PUBLIC,
    "api/redoc/": PUBLIC,
    "api/v1/auth/register/": CUSTOMER_ENTRY,
    "api/v1/auth/token/": CUSTOMER_ENTRY,
    "api/v1/auth/token/refresh/": CUSTOMER_ENTRY,
    "api/v1/auth/logout/": CUSTOMER,
    "api/v1/auth/password/": CUSTOMER,
    "api/v1/me/": CUSTOMER,
    "api/v1/me/export/": CUSTOMER,
    "api/v1/me/erase/": CUSTOMER,
    "api/v1/merchants/": DIRECTORY,
    "api/v1/merchants/<int:pk>/": DIRECTORY,
    "api/v1/stores/nearby/": DIRECTORY,
    "api/v1/cards/": CUSTOMER,
    "api/v1/cards/<int:pk>/": CUSTOMER,
    "api/v1/cards/<int:pk>/leave/": CUSTOMER,
    "api/v1/cards/<int:pk>/history/": CUSTOMER,
    "api/v1/cards/<int:pk>/rewards/": CUSTOMER,
    "api/v1/cards/<int:pk>/redemptions/": CUSTOMER,
    "api/v1/coupons/": CUSTOMER,
    "api/v1/coupons/<int:pk>/": CUSTOMER,
    "api/v1/coupons/<int:pk>/cancel/": CUSTOMER,
    "api/v1/cards/<int:pk>/claims/": CUSTOMER,
    "api/v1/external-cards/": CUSTOMER,
    "api/v1/external-cards/<int:pk>/": CUSTOMER,
    "api/v1/preferences/": CUSTOMER,
    "api/v1/preferences/merchants/<int:merchant_id>/": CUSTOMER,
    "api/v1/cards/<int:pk>/pass-token/": CUSTOMER,
    "api/v1/cards/<int:pk>/qr.png": CUSTOMER,
    "api/v1/cards/<int:pk>/qr.svg": CUSTOMER,
    "api/v1/cards/<int:pk>/barcode.png": CUSTOMER,
    "api/v1/cards/<int:pk>/barcode.svg": CUSTOMER,
    "api/v1/coupons/<int:pk>/qr.png": CUSTOMER,
    "api/v1/offers/": CUSTOMER,
    "api/v1/push-devices/": CUSTOMER,
    "api/v1/push-devices/<str:token>/": CUSTOMER,
    "hooks/pos/<uuid:connection_id>/": WEBHOOK,
    "hooks/crm/<uuid:connection_id>/": WEBHOOK,
    "hooks/stripe/": WEBHOOK,
    "api/health/": PUBLIC,
    # Card pages are reached by a signed slug; the matrix sends a forged one.
    "c/<str:slug>/": PUBLIC,
    "c/<str:slug>/qr.svg": PUBLIC,
    "c/<str:slug>/status.json": PUBLIC,
    "c/<str:slug>/google/": PUBLIC,
    "c/<str:slug>/pass.pkpass": PUBLIC,
    "till/": PUBLIC,  # the page only; every action it takes is a POS API call with the device key
    "passkit/v1/devices/<str:device_library_identifier>/registrations/<str:pass_type_identifier>/"
    "<str:serial_number>": PASSKIT,
    # Apple's protocol sends these two without a pass token: the list of serials names only cards the device
    # registered with a valid token, and the log endpoint only logs.
    "passkit/v1/devices/<str:device_library_identifier>/registrations/<str:pass_type_identifier>": PUBLIC,
    "passkit/v1/passes/<str:pass_type_identifier>/<str:serial_number>": PASSKIT,
    "passkit/v1/log": PUBLIC,
    "e/o/<str:token>/": PUBLIC,  # one-click opt-out by a signed token; the matrix sends a forged one
    "i/*": PUBLIC,  # pass images by signed URL
}

# Customer routes whose id is not an object of another customer: the caller's own preferences for a merchant.
NOT_CUSTOMER_OWNED = {"api/v1/preferences/merchants/<int:merchant_id>/"}
ADMIN_METHODS = ("GET", "POST")
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
FORGED = "forged-AbCdEf0123456789"


# --- the routes ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    pattern: str  # as the resolver spells it, regex levels included
    name: str  # namespaced url name, "" when unnamed
    callback: object
    parts: tuple  # (pattern text, is_regex) per level

    @property
    def klass(self) -> str | None:
        if self.pattern in ROUTES:
            return ROUTES[self.pattern]
        prefixes = [key for key in ROUTES if key.endswith("*") and self.pattern.startswith(key[:-1])]
        return ROUTES[max(prefixes, key=len)] if prefixes else None

    @property
    def view_class(self):
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)

    @property
    def methods(self) -> tuple:
        """The methods the view answers; for a function view, which does not say, every method (a 405 is then
        an acceptable answer). The admin reads GET and POST only (its old `<id>/` redirect answers any)."""
        if self.klass in (ADMIN, REPORTS):
            return ADMIN_METHODS
        view = self.view_class
        if view is not None:
            return tuple(method for method in ALL_METHODS
                         if hasattr(view, method.lower()) and method.lower() in view.http_method_names)
        return ALL_METHODS

    @property
    def has_id(self) -> bool:
        return "<" in self.pattern


def _walk(resolver, parts=(), namespace=""):
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        part = (str(pattern), hasattr(pattern, "regex") and not hasattr(pattern, "converters"))
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, (*parts, part), inner)
        elif isinstance(entry, URLPattern):
            full = (*parts, part)
            name = f"{namespace}{entry.name}" if entry.name else ""
            yield Route("".join(text for text, _ in full), name, entry.callback, full)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver()))


ROUTE_LIST = all_routes()


# --- the world --------------------------------------------------------------------------------------------------

@dataclass
class World:
    alpha: object
    bravo: object
    ids: dict  # converter name -> value, ALPHA's objects
    admin_rows: dict  # "admin/<app>/<model>/" -> ALPHA's row of that model
    headers: dict  # identity -> request headers
    session_key: str  # BRAVO's owner signed in to the admin
    bodies: dict  # route pattern -> body for an authenticated but foreign caller


def _jwt(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


def _admin_rows(alpha, extras) -> dict:
    rows = {}
    for model, model_admin in admin.site._registry.items():
        prefix = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        if isinstance(model_admin, MerchantScopedAdmin):
            queryset = scope_queryset(model._default_manager.all(), {alpha.merchant.pk}, model_admin.merchant_lookup)
            row = queryset.order_by("pk").first()
            rows[prefix] = row.pk if row else None
        else:
            row = extras.get(model._meta.label) or model._default_manager.order_by("pk").first()
            rows[prefix] = row.pk if row else 999_999
    missing = [prefix for prefix, pk in rows.items() if pk is None]
    assert not missing, f"ALPHA has no row for {missing}: the matrix would test a missing id, not another's"
    return rows


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction that is rolled back at the end; each test runs in a
    savepoint inside it."""
    # Function-scoped fixtures (tests/conftest.py's fast hasher) do not reach a module fixture.
    fast_hasher = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast_hasher, transaction.atomic():
        alpha, bravo = build_tenant("ALPHA"), build_tenant("BRAVO")
        alpha_customer = alpha.cards[0].wallet.customer
        bravo_customer = bravo.cards[0].wallet.customer
        external = ExternalCard.objects.create(wallet=alpha_customer.wallet, name="ALPHA gym",
                                               barcode_value="4006381333931", barcode_format="ean13")
        # The tenant's CRM connection posts out only; HubSpot also takes webhooks, so its signature is tried.
        hubspot = create_crm_connection(alpha.merchant, "hubspot", "ALPHA HubSpot",
                                        {"access_token": "pat-matrix", "client_secret": "matrix-client-secret"})
        push_device = register_push_device(alpha_customer, "apns", "ab" * 32)[0]
        set_pin(bravo.cashier, PIN)
        alpha_key = register_device(alpha.store, "ALPHA matrix till").key
        bravo_issued = register_device(bravo.store, "BRAVO matrix till")
        # A device's successful sign-in notes when it was last used (at most once a minute); dated ahead so
        # BRAVO's device, which does sign in, writes nothing the matrix would count.
        PosDevice.objects.filter(pk=bravo_issued.device.pk).update(
            last_used_at=timezone.now() + dt.timedelta(days=1))
        coupon = Redemption.objects.filter(card=alpha.cards[0]).order_by("pk").first()
        card = alpha.cards[0]
        issue_token(card)  # the merchant's token key exists before any test counts rows
        ids = {
            "card_id": card.pk, "entry_id": LedgerEntry.objects.filter(card=card).order_by("pk").first().pk,
            "campaign_id": Campaign.objects.get(merchant=alpha.merchant).pk, "merchant_id": alpha.merchant.pk,
            "card": card.pk, "coupon": coupon.pk, "external_card": external.pk, "merchant": alpha.merchant.pk,
            "push_token": push_device.token, "connection:hooks/pos/": alpha.pos_connection.pk,
            "connection:hooks/crm/": hubspot.pk, "serial_number": card.number,
            "pass_type_identifier": settings.APPLE_WALLET["PASS_TYPE_IDENTIFIER"],
            "device_library_identifier": "matrix-phone", "content_type_id": ContentType.objects.get_for_model(card).pk,
            "object_id": card.pk, "app_label": "wallet",
        }
        extras = {"core.User": alpha.owner, "engagement.PushDevice": push_device,
                  "token_blacklist.OutstandingToken": None}
        _jwt(alpha_customer.user)  # ALPHA's customer has an outstanding token for the token admin to point at
        extras["token_blacklist.OutstandingToken"] = OutstandingToken.objects.filter(user=alpha_customer.user).first()
        admin_rows = _admin_rows(alpha, extras)
        headers = {
            "anonymous": {},
            "BRAVO customer": {"HTTP_AUTHORIZATION": _jwt(bravo_customer.user)},
            "ALPHA customer": {"HTTP_AUTHORIZATION": _jwt(alpha_customer.user)},
            "ALPHA device": {"HTTP_AUTHORIZATION": f"Device {alpha_key}"},
            "BRAVO device": {"HTTP_AUTHORIZATION": f"Device {bravo_issued.key}", **as_cashier(bravo.cashier)},
            "BRAVO pass": {"HTTP_AUTHORIZATION": f"ApplePass {authentication_token(bravo.cards[0].number)}"},
            "BRAVO owner": {},
        }
        owner_client = Client()
        owner_client.force_login(bravo.owner)
        session_key = owner_client.session.session_key
        sale = f"{alpha.marker}-sale-1"
        plan = BillingPlan.objects.get(stripe_price_id="price_shared")
        bodies = {
            "api/pos/v1/scan/": lambda: {"code": card.number},
            "api/pos/v1/purchases/": lambda: {"code": card.number, "external_id": "MATRIX-1", "amount": 100,
                                              "currency": "EUR"},
            "api/pos/v1/redemptions/": lambda: {"code": issue_token(card), "reward_id": alpha.reward.pk},
            "api/pos/v1/refunds/": lambda: {"external_id": sale},
            "api/pos/v1/adjustments/": lambda: {"code": card.number, "delta": 5, "reason": "matrix"},
            "api/pos/v1/offline-batches/": lambda: {"purchases": [{
                "idempotency_key": "matrix-offline-1", "code": issue_token(card), "external_id": "MATRIX-2",
                "amount": 100, "currency": "EUR", "occurred_at": timezone.now().isoformat()}]},
            "admin/reports/billing/checkout/": lambda: {"merchant": alpha.merchant.pk, "plan": plan.pk},
            "admin/reports/billing/portal/": lambda: {"merchant": alpha.merchant.pk},
        }
        yield World(alpha, bravo, ids, admin_rows, headers, session_key, bodies)
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def no_throttle_state(world, db):
    """Throttle counters live in the cache: a 429 would hide the answer the matrix asserts."""
    cache.clear()
    yield
    cache.clear()


# --- building a concrete request ------------------------------------------------------------------------------

def _fill_regex(text: str, world: World) -> str:
    text = text.lstrip("^").rstrip("$")
    text = re.sub(r"\(\?P<app_label>[^)]*\)", world.ids["app_label"], text)
    return re.sub(r"\(\?P<url>[^)]*\)", "no-such-page/", text)


def _value(route: Route, name: str, converter: str, world: World):
    ids = world.ids
    if name in ("object_id", "id") and route.klass == ADMIN and not route.pattern.startswith("admin/r/"):
        prefix = next((prefix for prefix in world.admin_rows if route.pattern.startswith(prefix)), None)
        assert prefix, f"{route.pattern} takes an object id of no registered admin"
        return world.admin_rows[prefix]
    if name == "pk":
        for prefix, key in (("api/v1/cards/", "card"), ("api/v1/coupons/", "coupon"),
                            ("api/v1/external-cards/", "external_card"), ("api/v1/merchants/", "merchant")):
            if route.pattern.startswith(prefix):
                return ids[key]
    if name == "token" and route.pattern.startswith("api/v1/push-devices/"):
        return ids["push_token"]
    if name == "connection_id":
        return next(value for key, value in ids.items() if key.startswith("connection:")
                    and route.pattern.startswith(key.split(":", 1)[1]))
    if name in ids:
        return ids[name]
    return {"int": 999_999, "uuid": uuid.UUID(int=0)}.get(converter, FORGED)


def concrete_path(route: Route, world: World) -> str:
    out = []
    for text, is_regex in route.parts:
        if is_regex:
            out.append(_fill_regex(text, world))
            continue
        out.append(re.sub(r"<(?:(\w+):)?(\w+)>",
                          lambda match: str(_value(route, match.group(2), match.group(1) or "str", world)), text))
    return "/" + "".join(out)


# --- what counts as written -------------------------------------------------------------------------------------

def snapshot() -> dict:
    """On PostgreSQL, every insert, update and delete this transaction has made, per table
    (pg_stat_xact_user_tables): an UPDATE that keeps the row count is caught too. Elsewhere, row counts."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
                           " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0")
            return {f"{name} (inserted, updated, deleted)": counts for name, *counts in cursor.fetchall()}
        tables = sorted(connection.introspection.table_names(cursor))
        quote = connection.ops.quote_name
        cursor.execute("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(table)})" for table in tables))
        return dict(zip(tables, cursor.fetchone(), strict=True))


def changed(before: dict, after: dict) -> dict:
    return {key: (before.get(key), after.get(key)) for key in before.keys() | after.keys()
            if before.get(key) != after.get(key)}


# --- who tries what, and what they must get -------------------------------------------------------------------

LOGIN_REDIRECT = "login redirect"  # 302 to the admin's login page
ADMIN_REDIRECT = "admin redirect"  # 302 elsewhere in the admin ("no such object")
ALL_SALES_REJECTED = "all sales rejected"  # an offline batch answers per sale: each one rejected, none earned

# class -> identity -> allowed outcomes. An identity missing from a class is not tried on it.
EXPECTED = {
    CUSTOMER: {"anonymous": {401}, "BRAVO customer": {404}, "ALPHA device": {401}, "BRAVO owner": {401}},
    POS: {"anonymous": {401}, "ALPHA customer": {401}, "BRAVO owner": {401}, "BRAVO device": {404, ALL_SALES_REJECTED}},
    PASSKIT: {"anonymous": {401}, "BRAVO pass": {401}, "ALPHA customer": {401}, "ALPHA device": {401}},
    ADMIN: {"anonymous": {LOGIN_REDIRECT}, "ALPHA customer": {LOGIN_REDIRECT}, "ALPHA device": {LOGIN_REDIRECT},
            "BRAVO owner": {ADMIN_REDIRECT, 403, 404, 405}},
    REPORTS: {"anonymous": {LOGIN_REDIRECT}, "ALPHA customer": {LOGIN_REDIRECT}, "ALPHA device": {LOGIN_REDIRECT},
              "BRAVO owner": {403, 404, 405}},
    WEBHOOK: {identity: {400, 401, 403} for identity in
              ("anonymous", "ALPHA customer", "ALPHA device", "BRAVO owner")},
}
# Public by design: any caller, any method, never a 5xx and nothing written.
PUBLIC_IDENTITIES = ("anonymous", "ALPHA customer", "ALPHA device", "BRAVO owner")
PUBLIC_CLASSES = (PUBLIC, CUSTOMER_ENTRY, DIRECTORY)


# Routes where a signed-in caller of another merchant names ALPHA's objects in the body (see `world`).
FOREIGN_BODY_ROUTES = {"api/pos/v1/scan/", "api/pos/v1/purchases/", "api/pos/v1/redemptions/",
                       "api/pos/v1/refunds/", "api/pos/v1/adjustments/", "api/pos/v1/offline-batches/",
                       "admin/reports/billing/checkout/", "admin/reports/billing/portal/"}


def _applies(route: Route, identity: str) -> bool:
    """A foreign but signed-in caller is only wrong where the request names ALPHA's objects: BRAVO's customer
    in their own wallet, or BRAVO's owner on their own changelist, is the product working."""
    if identity == "BRAVO customer":
        return route.has_id and route.pattern not in NOT_CUSTOMER_OWNED
    if identity == "BRAVO device":
        return route.pattern in FOREIGN_BODY_ROUTES
    if identity == "BRAVO owner" and route.klass == ADMIN:
        return "<" in route.pattern.replace("(?P<", "")  # an object id, not the app index or the catch-all
    return True


def cases():
    for route in ROUTE_LIST:
        klass = route.klass
        if klass in PUBLIC_CLASSES:
            identities = PUBLIC_IDENTITIES
        elif klass in EXPECTED:
            identities = tuple(EXPECTED[klass])
        else:
            continue
        for identity in (identity for identity in identities if _applies(route, identity)):
            yield pytest.param(route, identity, id=f"/{route.pattern} as {identity}")


def _send(world: World, route: Route, identity: str, method: str):
    path = concrete_path(route, world)
    client = Client()
    if identity == "BRAVO owner":  # a fresh cookie jar each time: a logout in one test must not end the next's
        client.cookies[settings.SESSION_COOKIE_NAME] = world.session_key
    headers = world.headers[identity]
    foreign_body = world.bodies[route.pattern] if identity in ("BRAVO device", "BRAVO owner") and \
        route.pattern in FOREIGN_BODY_ROUTES else None
    if route.klass == REPORTS and identity == "BRAVO owner":  # the reports pick the merchant from the query
        path = f"{path}?merchant={world.alpha.merchant.pk}"
    if method == "GET":
        return path, client.get(path, **headers)
    body = foreign_body() if foreign_body else {}
    if route.klass in (ADMIN, REPORTS):  # the admin reads forms
        return path, client.generic(method, path, _form(body), content_type="application/x-www-form-urlencoded",
                                    **headers)
    return path, client.generic(method, path, json.dumps(body), content_type="application/json",
                                HTTP_IDEMPOTENCY_KEY=f"matrix-{method}-{route.pattern}", **headers)


def _form(body: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(body)


def _outcome(response):
    if response.status_code == 200 and response.request["PATH_INFO"] == "/api/pos/v1/offline-batches/":
        body = response.json()
        rejected = [row for row in body["results"] if row["status"] == "rejected"
                    and row["error"]["code"] == "not_found"]
        if body["earned"] == body["replayed"] == 0 and len(rejected) == len(body["results"]) > 0:
            return ALL_SALES_REJECTED
    if response.status_code == 302:
        login = settings.LOGIN_URL if settings.LOGIN_URL.startswith("/admin") else "/admin/login/"
        return LOGIN_REDIRECT if response["Location"].startswith(login) else ADMIN_REDIRECT
    return response.status_code


# --- the tests --------------------------------------------------------------------------------------------------

def test_every_route_is_classified():
    unclassified = [route.pattern for route in ROUTE_LIST if route.klass is None]
    assert unclassified == [], "classify each new route in ROUTES (and so in the matrix)"


def test_the_table_names_no_route_that_is_gone():
    patterns = {route.pattern for route in ROUTE_LIST}
    assert [key for key in ROUTES if not key.endswith("*") and key not in patterns] == []


def test_the_matrix_reaches_every_class_and_every_kind_of_caller():
    """Guards the matrix itself: were the enumeration to come back empty, every test below would pass."""
    tried = {(route.klass, identity) for route, identity in (case.values for case in cases())}
    expected = {(klass, identity) for klass, identities in EXPECTED.items() for identity in identities}
    expected |= {(klass, identity) for klass in (PUBLIC, CUSTOMER_ENTRY, DIRECTORY) for identity in PUBLIC_IDENTITIES}
    assert expected <= tried
    assert len(ROUTE_LIST) > 100


def _allowed_writes(route: Route, before: dict, after: dict) -> dict:
    """By design (pos_integration/webhooks.py), a rejected POS webhook keeps one capped delivery row marked
    rejected, so the merchant can see who knocks; that row, and nothing else, may be written."""
    diff = changed(before, after)
    if route.pattern == "admin/logout/":  # signing out ends the caller's own session
        diff.pop("django_session (inserted, updated, deleted)", None)
        diff.pop("django_session", None)
    if route.pattern == "hooks/pos/<uuid:connection_id>/":
        for key in [key for key in diff if key.split()[0] == WebhookDelivery._meta.db_table]:
            was, now = diff[key]
            grew = [b - a for a, b in zip(was or [0, 0, 0], now, strict=True)] if isinstance(now, list) else \
                now - was
            latest = WebhookDelivery.objects.order_by("-pk").first()
            if grew in ([1, 0, 0], 1) and latest.status == WebhookDelivery.Status.REJECTED:
                del diff[key]
    return diff


@pytest.fixture
def webhook_secrets(settings):
    """Stripe's endpoint answers 503 until it has a secret: give it one, so its signature check is what says no."""
    settings.STRIPE_BILLING = {**settings.STRIPE_BILLING, "WEBHOOK_SECRET": "whsec_matrix"}


def _problem(world: World, route: Route, identity: str, method: str) -> str | None:
    """What is wrong with one request, or None."""
    before = snapshot()
    path, response = _send(world, route, identity, method)
    after = snapshot()
    where = f"{method} {path} as {identity}: {response.status_code} {response.content[:200]!r}"
    if _allowed_writes(route, before, after):
        return f"{where} wrote {changed(before, after)}"
    if route.klass in PUBLIC_CLASSES:
        return where if response.status_code >= 500 else None
    allowed = EXPECTED[route.klass][identity]
    if route.view_class is None:
        allowed = allowed | {405}  # a function view that does not answer this method
    outcome = _outcome(response)
    return None if outcome in allowed else f"{where}; expected one of {sorted(map(str, allowed))}"


# Parametrized by route and caller; each test sends every method the route's view answers (one test per
# method would triple the count, and with it the run time, for no more information in a failure).
@pytest.mark.parametrize(("route", "identity"), list(cases()))
def test_a_wrong_caller_is_turned_away_and_nothing_is_written(world, webhook_secrets, route, identity):
    problems = [problem for method in route.methods if (problem := _problem(world, route, identity, method))]
    assert problems == []


def test_an_export_of_another_merchants_rows_holds_none_of_them(world):
    """The ledger's CSV export is an admin action on BRAVO's own changelist: naming ALPHA's entries in it
    exports none of them."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = world.session_key
    alpha_entries = list(LedgerEntry.objects.filter(merchant=world.alpha.merchant).values_list("pk", flat=True))
    before = snapshot()
    response = client.post("/admin/wallet/ledgerentry/", {"action": "export_csv", "_selected_action": alpha_entries})
    assert changed(before, snapshot()) == {}
    assert response.status_code in (200, 302)
    body = response.content.decode()
    assert not [text for text in world.alpha.texts() if text in body]
    assert world.alpha.cards[0].number not in body
